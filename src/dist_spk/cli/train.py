"""``dist-spk train``: one run (no search), streamed to W&B; the final training of a search's best."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dist_spk.cli.app import (
    WANDB_ARGS,
    ConfigFile,
    DataRoot,
    Device,
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
    preset: Preset = None,
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
    preset: Preset = None,
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


@train_app.command("plda")
def train_plda(
    embedding: Annotated[str, typer.Option(help="The speaker encoder: a checkpoint, run directory or EXP/best.")],
    data: Annotated[Path, typer.Option("--data", "-d", help="Speaker dataset (VoxCeleb or Kaldi folder, CSV, or a "
                                       "seed-layout diarization dataset): its speakers are embedded.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for xvec_transform.npz, plda.npz, plda.json "
                                      "and README.md.")],
    format: Annotated[str, typer.Option(help="auto, voxceleb, kaldi, csv or diarization.")] = "auto",
    per_speaker: Annotated[int, typer.Option(help="Utterances embedded per speaker (at most).")] = 20,
    max_seconds: Annotated[float, typer.Option(help="Seconds of each utterance embedded (diarization chunks are "
                                               "a few seconds).")] = 10.0,
    lda_dimension: Annotated[int, typer.Option(help="LDA dimensions kept (at most; also below the speaker "
                                               "count).")] = 128,
    force: Annotated[bool, typer.Option("--force", help="Replace an earlier PLDA in --out.")] = False,
    device: Device = "auto",
) -> None:
    """Fit an LDA + PLDA on the encoder's embeddings, for VBx clustering (evaluate pipeline --clustering vbx)."""
    import math

    from dist_spk.cuda import resolve_device
    from dist_spk.errors import DistSpkError
    from dist_spk.pipeline.plda import PLDA_FILE, fit_encoder_plda

    if per_speaker < 2 or lda_dimension < 1 or not (math.isfinite(max_seconds) and max_seconds > 0):
        raise DistSpkError("--per-speaker must be at least 2, --lda-dimension at least 1 and --max-seconds a "
                           "positive number")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise DistSpkError(f"--out {out} is not empty; choose another folder or pass --force to replace an "
                               "earlier PLDA")
        if not (out / PLDA_FILE).is_file():
            raise DistSpkError(f"--out {out}: not an earlier PLDA (no {PLDA_FILE}), not replaced")
    about = fit_encoder_plda(embedding, data, out, format=format, per_speaker=per_speaker, max_seconds=max_seconds,
                             device=resolve_device(device), lda_dimension=lda_dimension)
    typer.echo(f"wrote {out}: LDA {about['embedding_dimension']} -> {about['lda_dimension']} dimensions and a PLDA, "
               f"from {about['utterances']} utterances of {about['speakers']} speakers")
    typer.echo(f"next: dist-spk evaluate pipeline ... --embedding {embedding} --clustering vbx --plda {out}")
