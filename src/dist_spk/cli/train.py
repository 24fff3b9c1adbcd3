"""``dist-spk train``: one run (no search), streamed to W&B; the final training of a search's best."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dist_spk.cli.app import (
    WANDB_ARGS,
    ConfigFile,
    DataRoot,
    Out,
    Overrides,
    Preset,
    Resume,
    Workers,
    resolve_config,
    train_app,
    wandb_overrides,
)


def _train(task: str, resolved, out: str, resume: bool, names: tuple[str, ...]) -> None:
    """Train with the run streamed to W&B; under ``wandb agent`` the run directory is ``OUT/<W&B run id>``."""
    import os

    from dist_spk.config import to_dict
    from dist_spk.launch.run import OBJECTIVES, run_training
    from dist_spk.runs import storage
    from dist_spk.tune.wandb_logging import FollowRun

    out = storage.normalize(out)
    if os.environ.get("WANDB_SWEEP_ID") and os.environ.get("WANDB_RUN_ID"):
        out = storage.join(out, os.environ["WANDB_RUN_ID"])
    follow = FollowRun(run_dir=out, project=resolved.search.wandb_project, objective=OBJECTIVES[task],
                       config=to_dict(resolved), resume=resume)
    summary = run_training(task, resolved, out=out, resume=resume, while_training=follow)
    _print_summary(summary, names)
    typer.echo(f"run directory: {out} (config.yaml, metrics.jsonl, checkpoints/best)")
    if follow.offline:
        typer.echo(f"W&B run written offline to {follow.run_dir / 'wandb'}; upload it with: "
                   f"wandb sync {follow.run_dir / 'wandb'}/offline-run-*")


def _print_summary(summary: dict, names: tuple[str, ...]) -> None:
    best = summary.get("best") or {}
    typer.echo(f"best epoch {summary['best_epoch']} of {summary['epochs']} ({summary['wall_seconds']} s): "
               + "  ".join(f"{n}={best[n]:.4f}" for n in names if best.get(n) is not None))


@train_app.command("seg", context_settings=WANDB_ARGS)
def train_seg(
    ctx: typer.Context,
    data: DataRoot,
    out: Out,
    preset: Preset = "local",
    workers: Workers = None,
    protocol: Annotated[str | None, typer.Option(help="Protocol name when --data is a database.yml.")] = None,
    config: ConfigFile = None,
    overrides: Overrides = None,
    resume: Resume = False,
) -> None:
    """Fine-tune pyannote's segmentation model (PyanNet) on your dataset."""
    from dist_spk.segmentation.task import SEG_METRICS

    resolved = resolve_config("seg", preset, config, [*(overrides or []), *wandb_overrides(ctx)],
                        **{"data.root": data.resolve(), "data.protocol": protocol, "trainer.workers": workers})
    _train("seg", resolved, out, resume, SEG_METRICS)


@train_app.command("spk", context_settings=WANDB_ARGS)
def train_spk(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option("--data", "-d", help="Speaker dataset: VoxCeleb or Kaldi folder, CSV, or a "
                                       "seed-layout diarization dataset.")],
    out: Out,
    preset: Preset = "local",
    workers: Workers = None,
    trials: Annotated[Path | None, typer.Option(help="VoxCeleb-format trial list (default ROOT/trials.txt, else "
                                                "generated from held-out speakers).")] = None,
    config: ConfigFile = None,
    overrides: Overrides = None,
    resume: Resume = False,
) -> None:
    """Train the speaker encoder (Conformer or ECAPA, AAM-softmax); EER on held-out speakers every epoch."""
    from dist_spk.speaker.module import SPK_METRICS

    resolved = resolve_config("spk", preset, config, [*(overrides or []), *wandb_overrides(ctx)],
                        **{"data.root": data.resolve(), "data.trials": trials.resolve() if trials else None,
                           "trainer.workers": workers})
    _train("spk", resolved, out, resume, SPK_METRICS)


@train_app.command("best")
def train_best(
    exp: Annotated[str, typer.Argument(help="A finished search (dist-spk tune --out EXP): a path or a URI.")],
    out: Out,
    data: Annotated[Path | None, typer.Option("--data", "-d", help="Dataset (default: the one searched on).")] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs of the final training (default: the searched "
                                               "config's).")] = None,
    workers: Workers = None,
    overrides: Overrides = None,
    resume: Resume = False,
) -> None:
    """The long final training of a search's best config (EXP/best/config.yaml), from scratch."""
    from dist_spk.launch.run import OBJECTIVES
    from dist_spk.tune.results import best_of_experiment

    task, best = best_of_experiment(exp)
    resolved = resolve_config(task, "local", best, overrides, **{"data.root": data.resolve() if data else None,
                        "trainer.epochs": epochs, "trainer.workers": workers})
    typer.echo(f"[train best] {task} with {best}: {resolved.trainer.epochs} epochs, "
               f"{resolved.trainer.workers} worker(s)")
    _train(task, resolved, out, resume, (OBJECTIVES[task],))
