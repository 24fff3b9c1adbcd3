"""The ``dist-spk`` command line: a thin shell over the library.

Groups: ``data``, ``config``, ``train``, ``tune``, ``evaluate``, ``report`` and ``demo``. Errors in user
input (:class:`dist_spk.errors.DistSpkError`) print one line (or one block) and exit with status 2,
never a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dist_spk import __version__
from dist_spk.errors import DistSpkError

app = typer.Typer(
    help="Distributed hyper-parameter search for speaker-diarization models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Check, convert and synthesise datasets.", no_args_is_help=True)
config_app = typer.Typer(help="Show and validate run configs (presets, YAML files, --set overrides).",
                         no_args_is_help=True)
train_app = typer.Typer(help="Train one model (one run, no search).", no_args_is_help=True)
tune_app = typer.Typer(help="Hyper-parameter search with Ray Tune.", no_args_is_help=True)
evaluate_app = typer.Typer(help="Evaluate trained models.", no_args_is_help=True)
report_app = typer.Typer(help="Tables and plots of finished experiments.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")
app.add_typer(train_app, name="train")
app.add_typer(tune_app, name="tune")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(report_app, name="report")

Task = Annotated[str, typer.Argument(help="seg (segmentation) or spk (speaker encoder).")]
Preset = Annotated[str, typer.Option("--preset", "-p", help="Named preset: local (2 CPU cores) or cluster (GPUs).")]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML file with any subset of the config's keys.")
]
Overrides = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="Override one key, e.g. --set optim.lr=1e-3 (repeatable).")
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dist-spk {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Distributed hyper-parameter search for speaker-diarization models."""


# ---------------------------------------------------------------------------------------------
# config
# ---------------------------------------------------------------------------------------------


@config_app.command("show")
def config_show(task: Task, preset: Preset = "local", config: ConfigFile = None, overrides: Overrides = None) -> None:
    """Print the resolved config (preset < --config file < --set) as YAML."""
    from dist_spk.config import dump_config, load_config

    typer.echo(dump_config(load_config(task, preset_name=preset, file=config, overrides=overrides or [])), nl=False)


@config_app.command("presets")
def config_presets() -> None:
    """List the presets of each task."""
    from dist_spk.config import PRESETS

    for task, presets in PRESETS.items():
        for name, make in presets.items():
            typer.echo(f"{task:4} {name:8} {(make.__doc__ or '').strip().splitlines()[0]}")


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except DistSpkError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
