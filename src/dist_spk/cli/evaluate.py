"""``dist-spk evaluate``, ``embed`` and ``export``: trained models on data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dist_spk.cli.app import Checkpoint, DataRoot, Device, app, evaluate_app, export_app
from dist_spk.errors import DistSpkError


def _print_metrics(title: str, metrics: dict[str, float], out: Path | None) -> None:
    import json

    from rich import box
    from rich.table import Table

    from dist_spk.console import rich_console

    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        table.add_row(name, f"{value:.4f}")
    rich_console().print(table)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(metrics, indent=1))
        typer.echo(f"wrote {out}")


@evaluate_app.command("seg")
def evaluate_seg(
    checkpoint: Checkpoint,
    data: DataRoot,
    split: Annotated[str, typer.Option(help="train, dev or test.")] = "test",
    protocol: Annotated[str, typer.Option(help="Protocol name when --data is a database.yml.")] = "",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the metrics as JSON.")] = None,
) -> None:
    """Segmentation metrics (losses, DER and its components at the best threshold) on one split."""
    from dist_spk.segmentation.evaluate import evaluate_segmentation

    metrics = evaluate_segmentation(checkpoint, data, protocol=protocol, split=split)
    _print_metrics(f"{checkpoint} on {data} ({split})", metrics, out)


@evaluate_app.command("spk")
def evaluate_spk(
    checkpoint: Checkpoint,
    data: Annotated[Path, typer.Option("--data", "-d", help="Speaker dataset the trial list refers to.")],
    trials: Annotated[Path, typer.Option(help="VoxCeleb-format trial list (1 enroll test).")],
    format: Annotated[str, typer.Option(help="auto, voxceleb, kaldi, csv or diarization.")] = "auto",
    asnorm: Annotated[int, typer.Option(help="AS-norm cohort size (speakers outside the trials); 0 = off.")] = 0,
    clustering: Annotated[str, typer.Option(help="agglomerative, hdbscan or bisecting_kmeans (for ari, nmi, "
                                            "fmi).")] = "agglomerative",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Also write the metrics as JSON.")] = None,
    device: Device = "auto",
) -> None:
    """EER, minDCF (p 0.01 and 0.05), clustering ARI/NMI/FMI on a trial list; AS-norm figures with --asnorm."""
    from dist_spk.cuda import resolve_device
    from dist_spk.speaker.inference import evaluate_speaker

    metrics = evaluate_speaker(checkpoint, data, trials, format=format, asnorm_cohort=asnorm, clustering=clustering,
                               device=resolve_device(device))
    _print_metrics(f"{checkpoint} on {trials}", metrics, out)


@evaluate_app.command("pipeline")
def evaluate_pipeline_command(
    segmentation: Annotated[Path, typer.Option(help="Segmentation checkpoint or run directory (or EXP/best).")],
    embedding: Annotated[Path, typer.Option(help="Speaker-encoder checkpoint or run directory (or EXP/best).")],
    data: Annotated[str, typer.Option("--data", "-d", help="Seed-layout folder or database.yml; or "
                                      "'pyannote:sample', the 30 s recording pyannote.audio ships.")],
    split: Annotated[str, typer.Option(help="The split diarized and scored: train, dev or test.")] = "test",
    tune_on: Annotated[str | None, typer.Option(help="Tune the pipeline on this split first (e.g. dev).")] = None,
    iterations: Annotated[int, typer.Option(help="Tuning iterations (Optuna TPE).")] = 100,
    protocol: Annotated[str, typer.Option(help="Protocol name when --data is a database.yml.")] = "",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the report as JSON.")] = None,
    rttm_dir: Annotated[Path | None, typer.Option(help="Folder for one RTTM per file (default: next to --out, "
                                                  "else ./rttm).")] = None,
    clustering: Annotated[str, typer.Option(help="agglomerative (pyannote's), vbx (pyannote's, with --plda), "
                                            "hdbscan or bisecting_kmeans.")] = "agglomerative",
    plda: Annotated[Path | None, typer.Option(help="With --clustering vbx: a PLDA fitted to the encoder "
                                              "(dist-spk train plda).")] = None,
    export: Annotated[Path | None, typer.Option(help="Write the final (tuned, else default) pipeline here as a folder "
                                                "pyannote.audio's Pipeline.from_pretrained loads, with a model "
                                                "card.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an earlier export in --export, and write into a "
                                        "non-empty --rttm-dir.")] = False,
    device: Device = "auto",
) -> None:
    """Full diarization with our two models: DER (collar 0 and ±0.25 s), per-file table, RTTMs; --export ships it."""
    import json

    from dist_spk.console import Stages, internals_to
    from dist_spk.cuda import resolve_device
    from dist_spk.pipeline.diarization import check_clustering
    from dist_spk.pipeline.evaluate import SAMPLE, evaluate_pipeline, print_report

    if data != SAMPLE and not Path(data).exists():
        raise DistSpkError(f"--data {data}: no such dataset (or use {SAMPLE})")
    if iterations < 1:
        raise DistSpkError("--iterations must be at least 1")
    check_clustering(clustering, plda)
    if export is not None:
        from dist_spk.pipeline.export import check_export_target

        check_export_target(export, force=force)
    device = resolve_device(device)
    if rttm_dir is None:
        rttm_dir = out.with_suffix("").with_name(out.stem + "_rttm") if out else Path("rttm")
    if rttm_dir.is_dir() and any(rttm_dir.iterdir()) and not force:  # it may hold a split's reference RTTMs
        raise DistSpkError(f"--rttm-dir {rttm_dir} is not empty; choose another folder or pass --force to write the "
                           "hypotheses into it (files of the same name are replaced)")
    _check_models(segmentation, embedding)  # a wrong or unsafe checkpoint is refused before any file is written
    stages = Stages("evaluate pipeline", 3 if tune_on else 1)
    with internals_to((out.parent if out else rttm_dir.parent) / "logs" / "evaluate-pipeline.log") as log:
        report = evaluate_pipeline(segmentation, embedding, data if data == SAMPLE else Path(data), split=split,
                                   tune_on=tune_on, iterations=iterations, protocol=protocol, rttm_dir=rttm_dir,
                                   clustering=clustering, plda=plda, device=device, export=export, force=force,
                                   stages=stages)
    print_report(report)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=1))
    final = report[report["final"]]["overall"]["collar_0"]
    figures = [(f"DER, {split} ({report['final']} parameters)", f"{final['der']:.1%}",
                f"{report['baselines']['one_speaker_oracle_speech']['collar_0']['der']:.1%} (one speaker, oracle "
                "speech)"),
               ("  confusion / false alarm / miss",
                f"{final['confusion']:.1%} / {final['false_alarm']:.1%} / {final['miss']:.1%}",
                f"{report['baselines']['one_speaker_whole_file']['collar_0']['der']:.1%} (one speaker, whole file)")]
    produced = [("RTTMs", f"{rttm_dir}/"), *([("report", str(out))] if out else []), ("logs", str(log.path))]
    next_steps = [] if tune_on else ["--tune-on dev tunes the pipeline's parameters first"]
    if export is not None:
        produced.insert(0, ("pipeline", f"{export}/ (config.yaml, segmentation/, embedding/, plda/, README.md)"))
        next_steps += [f"dist-spk diarize AUDIO... --pipeline {export} --out rttm/",
                       f'python -c "from pyannote.audio import Pipeline; Pipeline.from_pretrained(\'{export}\')"']
    stages.summary("pipeline evaluated", figures=figures, produced=produced, next_steps=next_steps)


def _check_models(segmentation: Path, embedding: Path) -> None:
    """Each local model is a plain checkpoint (``weights_only=True``) of the right task."""
    from dist_spk.runs.checkpoints import TASK_NAMES, read_checkpoint
    from dist_spk.runs.run_dir import resolve_checkpoint

    for flag, path, task in (("--segmentation", segmentation, "seg"), ("--embedding", embedding, "spk")):
        if path.exists():
            _, found = read_checkpoint(resolve_checkpoint(path)[0])
            if found != task:
                raise DistSpkError(f"{flag} {path}: a {TASK_NAMES[found]} checkpoint, not a {TASK_NAMES[task]} one")


@app.command("embed")
def embed(
    checkpoint: Annotated[Path, typer.Option(help="A speaker-encoder checkpoint or run directory.")],
    audio: Annotated[list[Path], typer.Argument(help="Audio files to embed.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="NumPy .npz: one array per input file.")] = Path(
        "embeddings.npz"),
    device: Device = "auto",
    batch_size: Annotated[int, typer.Option(help="Files per forward pass (zero-padded; padding never changes an "
                                            "embedding).")] = 32,
) -> None:
    """Write speaker embeddings of audio files (whole files, 16 kHz after resampling)."""
    import numpy as np

    from dist_spk.cuda import resolve_device
    from dist_spk.data.speakers import Utterance
    from dist_spk.speaker.inference import embed_utterances, load_speaker_module

    missing = [str(p) for p in audio if not p.is_file()]
    if missing:
        raise DistSpkError(f"no such audio file: {', '.join(missing)}")
    if batch_size < 1:
        raise DistSpkError(f"--batch-size must be at least 1, got {batch_size}")
    device = resolve_device(device)
    module = load_speaker_module(checkpoint, device=device)
    utterances = [Utterance(str(p), p, "?") for p in audio]
    embeddings = embed_utterances(module, utterances, max_seconds=float("inf"), batch_size=batch_size,
                                  show_progress=True)
    np.savez(out, **{str(p): e for p, e in zip(audio, embeddings, strict=True)})
    typer.echo(f"wrote {out}: {len(audio)} embeddings of size {embeddings.shape[1]}")


@export_app.command("spk")
def export_spk(
    checkpoint: Annotated[str, typer.Option(help="A speaker-encoder checkpoint, run directory or EXP/best.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The file (onnx, torchscript) or folder (pyannote) to "
                                      "write.")] = Path("encoder.ts"),
    format: Annotated[str, typer.Option(help="onnx, torchscript or pyannote (a folder Model.from_pretrained "
                                        "loads).")] = "torchscript",
    force: Annotated[bool, typer.Option("--force", help="Replace an earlier export at --out.")] = False,
) -> None:
    """Export the encoder: (waves (B, N), lengths (B,)) -> (B, E), checked against the checkpoint; with a card."""
    from dist_spk.speaker.export import card_path, export_encoder

    path, error = export_encoder(checkpoint, out, format=format, force=force)
    typer.echo(f"wrote {path} ({format}; largest relative error against the checkpoint on a ragged batch "
               f"{error:.1e}) and its model card {card_path(path, format)}")
