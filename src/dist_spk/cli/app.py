"""The command-line application and what its commands share: the Typer apps, option types, config resolution."""

from __future__ import annotations

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
export_app = typer.Typer(help="Export trained models for use elsewhere.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")
app.add_typer(train_app, name="train")
app.add_typer(tune_app, name="tune")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(export_app, name="export")

Task = Annotated[str, typer.Argument(help="seg (segmentation) or spk (speaker encoder).")]
Preset = Annotated[str | None, typer.Option("--preset", "-p", help="Named preset: local (2 CPU cores) or cluster "
                                            "(GPUs). Default: local; on a cluster (RAY_ADDRESS set) it must be "
                                            "named.")]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", "-c", help="YAML file with any subset of the config's keys.")
]
Overrides = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="Override one key, e.g. --set optim.lr=1e-3 (repeatable).")
]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Also print what Ray, its workers, Lightning and W&B "
                                       "say (always in the run's logs/ folder); or DIST_SPK_VERBOSE=1.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dist-spk {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
    verbose: Verbose = False,
) -> None:
    """Distributed hyper-parameter search for speaker-diarization models."""
    from dist_spk.console import set_verbose

    set_verbose(verbose)


DataRoot = Annotated[Path, typer.Option("--data", "-d", help="Dataset: a seed-layout folder or a database.yml.")]
# a path, or an object-store URI (s3://bucket/prefix, gs://...): kept as text, a Path would fold its '//'
Out = Annotated[str, typer.Option("--out", "-o", help="Run directory (config.yaml, metrics.jsonl, checkpoints/): a "
                                  "path or an object-store URI (s3://bucket/run; with --workers >= 1).")]
Checkpoint = Annotated[str, typer.Option(help="A checkpoint file, a run directory (uses its best checkpoint) or "
                                         "EXP/best; a path or an object-store URI.")]
Workers = Annotated[int | None, typer.Option(help="Ray Train workers (DDP); 0 = plain Lightning in this process. "
                                            "Default: the preset's.")]
Device = Annotated[str, typer.Option(help="auto (a GPU when there is one), cpu, cuda or cuda:N.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")]


def resolve_config(task: str, preset: str | None, config: Path | None, overrides: list[str] | None, **keys: object):
    """The run config: preset < --config < --set < the dedicated flags (--data, --workers, ...)."""
    from dist_spk.config import load_config

    flags = [f"{key}={value}" for key, value in keys.items() if value is not None]
    return load_config(task, preset_name=chosen_preset(task, preset), file=config,
                       overrides=[*(overrides or []), *flags])


def chosen_preset(task: str, preset: str | None) -> str:
    """``--preset``, or ``local`` when none was given on this machine; joined to a cluster (``RAY_ADDRESS``, as
    ``ray job submit`` sets it) a preset must be named: the local one trains a toy model with CPU settings."""
    import os

    from dist_spk.config import PRESETS

    if preset:
        return preset
    if os.environ.get("RAY_ADDRESS"):
        raise DistSpkError(f"joined to a Ray cluster (RAY_ADDRESS is set) without --preset: name one "
                           f"({', '.join(PRESETS[task])}); the default, local, trains a toy {task} model with CPU "
                           "settings")
    return "local"


WANDB_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}  # `wandb agent` passes --key=value


def wandb_overrides(ctx: typer.Context) -> list[str]:
    """W&B's ``--optim.lr=0.001`` arguments (what ``wandb agent`` appends) as ``--set`` overrides."""
    overrides = []
    for arg in ctx.args:
        key, sep, value = arg.removeprefix("--").partition("=")
        if not arg.startswith("--") or not sep or "." not in key:
            raise DistSpkError(f"unexpected argument {arg!r}; override config keys with --set KEY=VALUE (or W&B's "
                               "--KEY=VALUE, e.g. --optim.lr=0.001)")
        overrides.append(f"{key}={value}")
    return overrides


Force = Annotated[bool, typer.Option("--force", help="Replace the output file if it exists.")]


def check_new_output(path: Path, *, force: bool) -> None:
    """An existing output file is replaced only with ``--force`` (it may be the dataset's own trials.txt or a user's
    database.yml); a folder in its place is never replaced. Checked before any work."""
    if path.is_dir():
        raise DistSpkError(f"{path}: is a folder; give a file name")
    if path.exists() and not force:
        raise DistSpkError(f"{path} already exists; choose another -o or pass --force to replace it")

