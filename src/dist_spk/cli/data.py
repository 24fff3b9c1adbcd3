"""``dist-spk data``: check, convert, synthesise and prepare datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dist_spk.cli.app import Force, check_new_output, data_app
from dist_spk.config.registry import TASKS
from dist_spk.errors import DistSpkError
from dist_spk.runs.files import write_text

Dataset = Annotated[Path, typer.Argument(help="A seed-layout folder, a pyannote database.yml, a VoxCeleb or Kaldi "
                                         "folder, or a CSV file.")]


def _exit_on_errors(*args, **kwargs) -> None:
    """The report (dist_spk.data.report), then exit 1 when it lists an error."""
    from dist_spk.data.report import print_report

    if print_report(*args, **kwargs):
        raise typer.Exit(1)


@data_app.command("check")
def data_check(
    root: Dataset,
    protocol: Annotated[str, typer.Option(help="Protocol name when ROOT is a pyannote database.yml.")] = "",
    format: Annotated[str, typer.Option(help="Speaker datasets: auto, voxceleb, kaldi or csv.")] = "auto",
    trials: Annotated[Path | None, typer.Option(help="Speaker datasets: a VoxCeleb-format trial list to check "
                                                "(default ROOT/trials.txt when present).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON.")] = None,
) -> None:
    """Validate a dataset before training: report every problem, with its file and line."""
    from dist_spk.data.layout import is_seed_layout

    if root.suffix in (".yml", ".yaml") or (is_seed_layout(root) and format == "auto"):
        from dist_spk.data.check import check_diarization, check_protocol

        if root.suffix in (".yml", ".yaml"):
            from dist_spk.data.protocol import load_protocol

            report = check_protocol(load_protocol(root, protocol))
        else:
            report = check_diarization(root)
        rows = {split: stats.as_row() for split, stats in report.stats.items()}
        _exit_on_errors(f"diarization dataset {report.root}", rows, report.problems, json_out=json_out)
        return
    from dist_spk.data.speakers import check_speakers, load_speakers

    manifest = load_speakers(root, format=format)
    if trials is None and manifest.root.joinpath("trials.txt").is_file():
        trials = manifest.root / "trials.txt"
    result = check_speakers(manifest, trials_path=trials)
    row = {"utterances": len(manifest.utterances), "speakers": len(manifest.speakers()),
           "hours": round(result.seconds / 3600, 3), "trials": len(result.trials),
           "target_trials": sum(t.target for t in result.trials)}
    _exit_on_errors(f"{manifest.format} speaker dataset {manifest.root}", {"all": row}, result.problems,
                    json_out=json_out)


@data_app.command("protocol")
def data_protocol(
    root: Annotated[Path, typer.Argument(help="A seed-layout dataset folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The database.yml to write.")] = Path("database.yml"),
    name: Annotated[str | None, typer.Option(help="Database name (default: the folder's name).")] = None,
    force: Force = False,
) -> None:
    """Write a pyannote.database YAML for a seed-layout dataset (protocol NAME.SpeakerDiarization.seed)."""
    from dist_spk.data.layout import is_seed_layout
    from dist_spk.data.protocol import PROTOCOL_NAME, database_name, write_database_yaml

    check_new_output(output, force=force)
    if not is_seed_layout(root):
        raise DistSpkError(f"{root}: not a seed-layout dataset (no train.txt, dev.txt or test.txt)")
    path = write_database_yaml(root, output, name=name)
    typer.echo(f"wrote {path}: protocol {name or database_name(root)}.SpeakerDiarization.{PROTOCOL_NAME}")


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Argument(help="Output folder (new or empty).")],
    seed: Annotated[int, typer.Option(help="Same seed, same corpus.")] = 0,
    size: Annotated[str, typer.Option(help="tiny, small (demo) or medium.")] = "small",
    noise: Annotated[bool, typer.Option("--noise/--no-noise", help="Mix background noise in.")] = True,
    style: Annotated[str, typer.Option(help="demo (voices to train on) or heldout (voices no demo corpus holds, "
                                       "5-20 dB SNR: evaluate demo-trained models on it, never train on it).")
                     ] = "demo",
) -> None:
    """Synthesise the demo corpus with espeak-ng voices: OUT/diar (seed layout), OUT/spk (VoxCeleb), OUT/noise."""
    import time

    from dist_spk.console import Stages
    from dist_spk.data.synth import synthesize

    started = time.perf_counter()
    stages = Stages("data synth", 1)
    with stages.stage(f"synthesising the {size} {style} corpus (seed {seed}) with espeak-ng voices into {out}"):
        summary = synthesize(out, seed=seed, size=size, noise=noise, style=style)
    typer.echo(f"wrote {out}: {sum(summary.conversations.values())} conversations ({summary.diar_hours:.2f} h), "
               f"{summary.spk_utterances} utterances of {len(summary.voices)} speakers, {summary.trials} trials, "
               f"in {time.perf_counter() - started:.1f} s")
    stages.summary(f"corpus written: {out}", figures=[], produced=[
        ("diarization (seed layout)", f"{out / 'diar'}"), ("speakers (VoxCeleb)", f"{out / 'spk'}"),
        ("noises for augmentation", f"{out / 'noise'}")],
        next_steps=[f"dist-spk data check {out / 'diar'}", f"dist-spk tune seg --data {out / 'diar'} --out EXP",
                    f"dist-spk tune spk --data {out / 'spk'} --out EXP"])


@data_app.command("prepare")
def data_prepare(
    root: Dataset,
    out: Annotated[str, typer.Option("--out", "-o", help="The training cache folder to write, or an object-store "
                                                          "URI (s3://...): each node then fetches it to its disk.")],
    task: Annotated[str, typer.Option(help="auto (a diarization dataset: seg, else spk), seg or spk.")] = "auto",
    protocol: Annotated[str, typer.Option(help="Protocol name when ROOT is a pyannote database.yml.")] = "",
    format: Annotated[str, typer.Option(help="spk: auto, voxceleb, kaldi, csv or diarization.")] = "auto",
    engine: Annotated[str, typer.Option(
        help="auto (a Ray Data job across the cluster's nodes when RAY_ADDRESS is set, else this process), "
             "local, or ray.")] = "auto",
) -> None:
    """Decode a dataset once into a training cache every run and trial shares (then --set data.cache=OUT)."""
    import time

    from dist_spk.console import duration
    from dist_spk.data.protocol import is_seed_layout
    from dist_spk.data.stored_cache import check_stored_cache, local_cache
    from dist_spk.data.training_cache import dataset_sources, open_cache
    from dist_spk.launch.prepare_cache import prepare_cache, prepare_log, use_ray
    from dist_spk.runs import storage

    if task == "auto":
        task = "seg" if root.suffix in (".yml", ".yaml") or is_seed_layout(root) else "spk"
    if task not in TASKS:
        raise DistSpkError(f"--task {task}: valid: auto, {', '.join(TASKS)}")
    options = {"protocol": protocol} if task == "seg" else {"format": format}
    use_ray(engine)  # a bad --engine is refused before anything is read
    started = time.monotonic()
    sources = dataset_sources(root, task=task, **options)
    out = storage.normalize(out) if storage.is_remote(out) else str(Path(out))
    nodes = prepare_cache(sources, out, engine=engine)
    if storage.is_remote(out):
        check_stored_cache(out)  # the upload is complete; freshness is checked once, on this node's copy below
    cache = open_cache(local_cache(out), sources=sources)  # a stored cache: this node's copy, prepared here
    hours = cache.samples / 16000 / 3600
    where = ("in this process" if "local" in nodes else
             f"by a Ray Data job on {len(nodes)} node(s) ({', '.join(str(n) for n in sorted(nodes.values()))} files; "
             f"Ray's output in {prepare_log(out)})")
    typer.echo(f"wrote {out}: {len(cache.files)} files, {hours:.2f} h of 16 kHz audio "
               f"({cache.samples * 2 / 1e6:.1f} MB) decoded {where} in {duration(time.monotonic() - started)}; "
               f"train with --set data.cache={out}")
    typer.echo(f"next: dist-spk tune {task} --data {root} --out EXP --set data.cache={out}")


@data_app.command("trials")
def data_trials(
    root: Dataset,
    output: Annotated[Path, typer.Option("--output", "-o", help="Trial list to write.")] = Path("trials.txt"),
    format: Annotated[str, typer.Option(help="auto, voxceleb, kaldi, csv or diarization.")] = "auto",
    fraction: Annotated[float, typer.Option(help="Share of speakers held out.")] = 0.1,
    seed: Annotated[int, typer.Option()] = 0,
    force: Force = False,
) -> None:
    """Generate a balanced VoxCeleb-format trial list from held-out speakers."""
    from dist_spk.data.speakers import generate_trials, heldout_split, load_speakers
    from dist_spk.data.trials import format_trials

    check_new_output(output, force=force)
    manifest = load_speakers(root, format=format)
    _, heldout = heldout_split(manifest, fraction=fraction, seed=seed)
    trials = generate_trials(manifest, heldout, seed=seed)
    write_text(output, format_trials(trials))
    typer.echo(f"wrote {output}: {len(trials)} trials over {len(heldout)} held-out speakers "
               f"(training then uses the other {len(manifest.speakers()) - len(heldout)})")


@data_app.command("segments")
def data_segments(
    root: Annotated[Path, typer.Argument(help="A seed-layout diarization dataset.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="CSV to write (path,speaker,start,end).")] = Path(
        "segments.csv"),
    split: Annotated[str, typer.Option(help="train, dev or test.")] = "train",
    min_seconds: Annotated[float, typer.Option(help="Shortest single-speaker stretch kept.")] = 1.5,
    speaker_scope: Annotated[str, typer.Option(help="file: labels are per recording; global: shared.")] = "file",
    force: Force = False,
) -> None:
    """Cut single-speaker segments from a diarization dataset's RTTMs, as a speaker CSV."""
    import csv
    import io

    from dist_spk.data.problems import format_problems
    from dist_spk.data.speakers import load_speakers

    check_new_output(output, force=force)
    manifest = load_speakers(root, format="diarization", split=split, min_seconds=min_seconds,
                             speaker_scope=speaker_scope)
    if manifest.problems:
        raise DistSpkError("cannot cut segments:\n" + format_problems(manifest.problems))
    handle = io.StringIO(newline="")
    writer = csv.writer(handle)
    writer.writerow(["path", "speaker", "start", "end"])
    for u in manifest.utterances:
        writer.writerow([str(u.path), u.speaker, f"{u.start:.3f}", f"{u.end:.3f}"])
    write_text(output, handle.getvalue())
    typer.echo(f"wrote {output}: {len(manifest.utterances)} segments of {len(manifest.speakers())} speakers")
