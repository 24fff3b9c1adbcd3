"""The ``dist-spk`` command line: a thin shell over the library, one module per command group.

Groups ``data``, ``config``, ``train``, ``tune``, ``evaluate`` and ``export``; commands ``report``,
``embed``, ``demo`` and ``doctor``. Errors in user input (:class:`dist_spk.errors.DistSpkError`) print one line
(or one block) and exit with status 2, never a traceback; ``data check`` exits 1 on dataset errors.
"""

from __future__ import annotations

import sys

import typer

from dist_spk.cli import configs, data, demo, diarize, doctor, evaluate, report, train, tune  # noqa: F401 (registers)
from dist_spk.cli.app import app
from dist_spk.errors import DistSpkError

__all__ = ["app", "main"]


def main(argv: list[str] | None = None, *, prog_name: str = "dist-spk", job: bool = False) -> None:
    """Console-script entry point; ``ray_jobs/*.py`` call it with their command prefixed to ``argv`` and ``job``
    (a submitted job whose metadata carries a credential is refused first: :mod:`dist_spk.launch.secrets`)."""
    try:
        if job:
            from dist_spk.launch.secrets import refuse_submitted_secrets

            refuse_submitted_secrets()
        app(args=argv, prog_name=prog_name)
    except DistSpkError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
