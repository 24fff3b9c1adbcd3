"""The ``dist-spk`` command line: a thin shell over the library.

Groups ``data``, ``config``, ``train``, ``tune``, ``evaluate`` and ``export``; commands ``report``,
``embed`` and ``demo``. Errors in user input (:class:`dist_spk.errors.DistSpkError`) print one line
(or one block) and exit with status 2, never a traceback; ``data check`` exits 1 on dataset errors.
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
export_app = typer.Typer(help="Export trained models for use elsewhere.", no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(config_app, name="config")
app.add_typer(train_app, name="train")
app.add_typer(tune_app, name="tune")
app.add_typer(evaluate_app, name="evaluate")
app.add_typer(export_app, name="export")

Task = Annotated[str, typer.Argument(help="seg (segmentation) or spk (speaker encoder).")]
Preset = Annotated[str, typer.Option("--preset", "-p", help="Named preset: local (2 CPU cores) or cluster (GPUs).")]
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


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------

Dataset = Annotated[Path, typer.Argument(help="A seed-layout folder, a pyannote database.yml, a VoxCeleb or Kaldi "
                                         "folder, or a CSV file.")]


def _print_report(title: str, rows: dict[str, dict[str, object]], problems: list, *, json_out: Path | None,
                  extra: dict | None = None) -> None:
    """Stats table on stdout, every problem after it, an optional JSON copy; exit 1 on any error."""
    import json

    from rich import box
    from rich.table import Table

    from dist_spk.console import rich_console
    from dist_spk.data.problems import format_problems

    short = {"speech_hours": "speech h", "overlap_ratio": "overlap", "speakers_per_file": "spk/file",
             "sample_rates": "Hz", "channels": "ch", "target_trials": "targets"}
    console = rich_console()
    if rows:
        table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, title_justify="left")
        columns = list(next(iter(rows.values())))
        table.add_column("split")
        for column in columns:
            table.add_column(short.get(column, column), justify="right")
        for split, row in rows.items():
            table.add_row(split, *(str(row[c]) for c in columns))
        console.print(table)
    errors = sum(p.severity == "error" for p in problems)
    if problems:
        typer.echo(format_problems(problems))
    if json_out is not None:
        record = {"ok": errors == 0, "stats": rows, "problems": [
            {"path": str(p.path), "line": p.line, "severity": p.severity, "message": p.message} for p in problems
        ]} | (extra or {})
        json_out.write_text(json.dumps(record, indent=1))
    typer.echo(f"{errors} error(s), {len(problems) - errors} warning(s)")
    if errors:
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
        _print_report(f"diarization dataset {report.root}", rows, report.problems, json_out=json_out)
        return
    from dist_spk.data.speakers import check_speakers, load_speakers

    manifest = load_speakers(root, format=format)
    if trials is None and manifest.root.joinpath("trials.txt").is_file():
        trials = manifest.root / "trials.txt"
    result = check_speakers(manifest, trials_path=trials)
    row = {"utterances": len(manifest.utterances), "speakers": len(manifest.speakers()),
           "hours": round(result.seconds / 3600, 3), "trials": len(result.trials),
           "target_trials": sum(t.target for t in result.trials)}
    _print_report(f"{manifest.format} speaker dataset {manifest.root}", {"all": row}, result.problems,
                  json_out=json_out)


@data_app.command("protocol")
def data_protocol(
    root: Annotated[Path, typer.Argument(help="A seed-layout dataset folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The database.yml to write.")] = Path("database.yml"),
    name: Annotated[str | None, typer.Option(help="Database name (default: the folder's name).")] = None,
) -> None:
    """Write a pyannote.database YAML for a seed-layout dataset (protocol NAME.SpeakerDiarization.seed)."""
    from dist_spk.data.layout import is_seed_layout
    from dist_spk.data.protocol import PROTOCOL_NAME, database_name, write_database_yaml

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
    out: Annotated[Path, typer.Option("--out", "-o", help="The training cache folder to write.")],
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
    from dist_spk.data.training_cache import dataset_sources, open_cache
    from dist_spk.launch.prepare_cache import prepare_cache, use_ray

    if task == "auto":
        task = "seg" if root.suffix in (".yml", ".yaml") or is_seed_layout(root) else "spk"
    if task not in ("seg", "spk"):
        raise DistSpkError(f"--task {task}: valid: auto, seg, spk")
    options = {"protocol": protocol} if task == "seg" else {"format": format}
    use_ray(engine)  # a bad --engine is refused before anything is read
    started = time.monotonic()
    sources = dataset_sources(root, task=task, **options)
    nodes = prepare_cache(sources, out, engine=engine)
    cache = open_cache(out, sources=sources)
    hours = cache.samples / 16000 / 3600
    where = ("in this process" if "local" in nodes else
             f"by a Ray Data job on {len(nodes)} node(s) ({', '.join(str(n) for n in sorted(nodes.values()))} files)")
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
) -> None:
    """Generate a balanced VoxCeleb-format trial list from held-out speakers."""
    from dist_spk.data.speakers import generate_trials, heldout_split, load_speakers
    from dist_spk.data.trials import format_trials

    manifest = load_speakers(root, format=format)
    _, heldout = heldout_split(manifest, fraction=fraction, seed=seed)
    trials = generate_trials(manifest, heldout, seed=seed)
    output.write_text(format_trials(trials))
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
) -> None:
    """Cut single-speaker segments from a diarization dataset's RTTMs, as a speaker CSV."""
    import csv

    from dist_spk.data.problems import format_problems
    from dist_spk.data.speakers import load_speakers

    manifest = load_speakers(root, format="diarization", split=split, min_seconds=min_seconds,
                             speaker_scope=speaker_scope)
    if manifest.problems:
        raise DistSpkError("cannot cut segments:\n" + format_problems(manifest.problems))
    with output.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "speaker", "start", "end"])
        for u in manifest.utterances:
            writer.writerow([str(u.path), u.speaker, f"{u.start:.3f}", f"{u.end:.3f}"])
    typer.echo(f"wrote {output}: {len(manifest.utterances)} segments of {len(manifest.speakers())} speakers")


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------

DataRoot = Annotated[Path, typer.Option("--data", "-d", help="Dataset: a seed-layout folder or a database.yml.")]
# a path, or an object-store URI (s3://bucket/prefix, gs://...): kept as text, a Path would fold its '//'
Out = Annotated[str, typer.Option("--out", "-o", help="Run directory (config.yaml, metrics.jsonl, checkpoints/): a "
                                  "path or an object-store URI (s3://bucket/run; with --workers >= 1).")]
Checkpoint = Annotated[str, typer.Option(help="A checkpoint file, a run directory (uses its best checkpoint) or "
                                         "EXP/best; a path or an object-store URI.")]
Workers = Annotated[int | None, typer.Option(help="Ray Train workers (DDP); 0 = plain Lightning in this process. "
                                            "Default: the preset's.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run in --out from its last checkpoint.")]


def _resolve(task: str, preset: str, config: Path | None, overrides: list[str] | None, **keys: object):
    """The run config: preset < --config < --set < the dedicated flags (--data, --workers, ...)."""
    from dist_spk.config import load_config

    flags = [f"{key}={value}" for key, value in keys.items() if value is not None]
    return load_config(task, preset_name=preset, file=config, overrides=[*(overrides or []), *flags])


WANDB_ARGS = {"allow_extra_args": True, "ignore_unknown_options": True}  # `wandb agent` passes --key=value


def _wandb_overrides(ctx: typer.Context) -> list[str]:
    """W&B's ``--optim.lr=0.001`` arguments (what ``wandb agent`` appends) as ``--set`` overrides."""
    overrides = []
    for arg in ctx.args:
        key, sep, value = arg.removeprefix("--").partition("=")
        if not arg.startswith("--") or not sep or "." not in key:
            raise DistSpkError(f"unexpected argument {arg!r}; override config keys with --set KEY=VALUE (or W&B's "
                               "--KEY=VALUE, e.g. --optim.lr=0.001)")
        overrides.append(f"{key}={value}")
    return overrides


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

    resolved = _resolve("seg", preset, config, [*(overrides or []), *_wandb_overrides(ctx)],
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

    resolved = _resolve("spk", preset, config, [*(overrides or []), *_wandb_overrides(ctx)],
                        **{"data.root": data.resolve(), "data.trials": trials.resolve() if trials else None,
                           "trainer.workers": workers})
    _train("spk", resolved, out, resume, SPK_METRICS)


def best_of_experiment(exp: str) -> tuple[str, Path]:
    """(task, best config file) of a finished search (a path or an object-store URI), with a clear error otherwise."""
    import json

    from dist_spk.launch.run import OBJECTIVES
    from dist_spk.tune.results import mirrored_experiment

    best = mirrored_experiment(exp, only=("best",)) / "best"
    metrics, config = best / "metrics.json", best / "config.yaml"
    if not metrics.is_file() or not config.is_file():
        raise DistSpkError(f"{exp}: no best/config.yaml and best/metrics.json (not a finished `dist-spk tune` "
                           "experiment; a search writes them when it ends)")
    objective = json.loads(metrics.read_text()).get("objective")
    tasks = {metric: task for task, metric in OBJECTIVES.items()}
    if objective not in tasks:
        raise DistSpkError(f"{metrics}: unknown objective {objective!r}; expected one of {', '.join(tasks)}")
    return tasks[objective], config


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

    task, best = best_of_experiment(exp)
    resolved = _resolve(task, "local", best, overrides, **{"data.root": data.resolve() if data else None,
                        "trainer.epochs": epochs, "trainer.workers": workers})
    typer.echo(f"[train best] {task} with {best}: {resolved.trainer.epochs} epochs, "
               f"{resolved.trainer.workers} worker(s)")
    _train(task, resolved, out, resume, (OBJECTIVES[task],))


# ---------------------------------------------------------------------------------------------
# tune
# ---------------------------------------------------------------------------------------------

Space = Annotated[Path | None, typer.Option(help="Search-space YAML (W&B sweep or Tune syntax, or a variants: list), "
                                            "or a shipped space's name (seed_segmentation_variants, "
                                            "seed_speaker_optuna); default: the shipped space of the task.")]


def _tune(task: str, data: Path, out: str, preset: str, space: Path | None, num_samples: int | None,
          scheduler: str | None, search: str | None, workers_per_trial: int | None, gpus_per_worker: float | None,
          max_concurrent: int | None, resume: bool, config: Path | None, overrides: list[str] | None) -> None:
    from dist_spk.config import read_config_file
    from dist_spk.launch.run import OBJECTIVES
    from dist_spk.runs import storage
    from dist_spk.tune.runner import tune_task
    from dist_spk.tune.space import grid_of, parse_space, space_path, sweep_overrides

    path = space_path(space, task)
    document = read_config_file(path)
    # the file's method / early_terminate first: --set and the dedicated flags override them
    overrides = [*sweep_overrides(document, objective=OBJECTIVES[task], source=str(path)), *(overrides or [])]
    keys = {"data.root": data.resolve(), "search.num_samples": num_samples, "search.trial_scheduler": scheduler,
            "search.sampler": search, "trainer.workers": workers_per_trial, "trainer.gpus_per_worker": gpus_per_worker,
            "search.max_concurrent": max_concurrent}
    resolved = _resolve(task, preset, config, overrides, **keys)
    params = grid_of(parse_space(document, task, source=str(path)), document)
    rows, best = tune_task(task, resolved, params, exp_dir=out, resume=resume)
    stopped = sum(r["status"] == "stopped early" for r in rows)
    exp = storage.normalize(out)
    typer.echo(f"{len(rows)} trials ({stopped} stopped early); {storage.join(exp, 'summary.csv')}; best: "
               f"{storage.join(exp, 'best') if best else 'none'}; plots: {storage.join(exp, 'plots')}; Optuna study: "
               f"optuna-dashboard {storage.local_mirror(exp) / 'optuna.journal'}")
    if best is None:
        raise typer.Exit(1)


def _tune_command(task: str, objective: str):
    """The ``dist-spk tune <task>`` command: both tasks take the same options."""

    def command(
        data: Annotated[Path, typer.Option("--data", "-d", help="Dataset: a seed-layout folder or database.yml "
                                           "(seg); a VoxCeleb/Kaldi folder, CSV or seed layout (spk).")],
        out: Annotated[str, typer.Option("--out", "-o", help="Experiment directory: a path, or an object-store URI "
                                         "(s3://bucket/exp, gs://...) for a cluster without a shared file system.")],
        preset: Preset = "local", space: Space = None,
        num_samples: Annotated[int | None, typer.Option(help="Trials (default: the preset's).")] = None,
        scheduler: Annotated[str | None, typer.Option(help="asha, fifo or pbt (population based training).")] = None,
        search: Annotated[str | None, typer.Option(help="random or optuna (TPE).")] = None,
        workers_per_trial: Annotated[int | None, typer.Option(help="Ray Train workers per trial.")] = None,
        gpus_per_worker: Annotated[float | None, typer.Option(help="GPUs per worker (with trainer.use_gpu).")] = None,
        max_concurrent: Annotated[int | None, typer.Option(help="Most trials at once (default: what the cluster can "
                                                           "grow to; its autoscaler adds nodes for the rest).")] = None,
        resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted search in --out.")] = False,
        config: ConfigFile = None, overrides: Overrides = None, verbose: Verbose = False,
    ) -> None:
        from dist_spk.console import set_verbose

        set_verbose(verbose)
        _tune(task, data, out, preset, space, num_samples, scheduler, search, workers_per_trial, gpus_per_worker,
              max_concurrent, resume, config, overrides)

    command.__doc__ = f"Search {objective[0]} hyper-parameters (objective: {objective[1]}, lower is better)."
    return command


tune_app.command("seg")(_tune_command("seg", ("segmentation fine-tuning", "DiarizationErrorRate")))
tune_app.command("spk")(_tune_command("spk", ("speaker-encoder", "eer")))


@tune_app.command("export-sweep")
def tune_export_sweep(
    task: Task,
    space: Space = None,
    method: Annotated[str, typer.Option(help="W&B sweep method: random, grid or bayes.")] = "bayes",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="File to write (default: print).")] = None,
    data: Annotated[str | None, typer.Option("--data", "-d", help="Dataset the agent's runs train on (default: the "
                                             "agent's $DIST_SPK_DATA).")] = None,
    runs_dir: Annotated[str | None, typer.Option(help="Folder of the agent's runs, one subfolder per W&B run "
                                                 "(default runs/sweep-TASK).")] = None,
    preset: Preset = "local",
    early_terminate: Annotated[bool, typer.Option(help="W&B hyperband early stopping, rungs as the preset's ASHA "
                                                  "(min_iter = search.grace_period, eta = reduction_factor).")] = True,
) -> None:
    """Write the W&B sweep equivalent to a search space, runnable as is by `wandb sweep` + `wandb agent`."""
    from dist_spk.config import load_config
    from dist_spk.launch.run import OBJECTIVES
    from dist_spk.tune.space import dump_sweep, load_space, space_path, sweep_command

    if task not in OBJECTIVES:
        raise DistSpkError(f"unknown task {task!r}; valid: {', '.join(OBJECTIVES)}")
    search = load_config(task, preset_name=preset).search
    rungs = {"type": "hyperband", "min_iter": search.grace_period, "eta": search.reduction_factor}
    command = sweep_command(task, preset=preset, data=data, runs_dir=runs_dir or f"runs/sweep-{task}")
    text = dump_sweep(load_space(space_path(space, task), task), metric=OBJECTIVES[task], method=method,
                      command=command, early_terminate=rungs if early_terminate else None)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text)
        typer.echo(f"wrote {out}; run it with: wandb sweep {out}  then  wandb agent <entity/project/sweep id>")


@tune_app.command("sync")
def tune_sync(
    exp: Annotated[str, typer.Argument(help="A search written by 'dist-spk tune' (offline W&B): a path or a URI.")],
    project: Annotated[str | None, typer.Option(help="W&B project (default: the search's search.wandb_project).")]
    = None,
) -> None:
    """Upload a search that logged to W&B offline as a W&B sweep: one run per trial joining the sweep, the
    experiment's run and its workspace. Use it instead of 'wandb sync' for the experiment's runs."""
    from dist_spk.tune.results import mirrored_experiment
    from dist_spk.tune.wandb_sync import sync_experiment

    sync_experiment(mirrored_experiment(exp), project=project)


@app.command("report")
def report(
    exp: Annotated[str, typer.Argument(help="An experiment directory written by 'dist-spk tune' (a path or a URI).")],
    tables: Annotated[bool, typer.Option("--tables", help="Also write the seed-style Markdown/CSV table of every "
                                         "trial's epochs and a comparison table to EXP/report/, and print them.")]
    = False,
) -> None:
    """Draw an experiment's plots into EXP/plots (optimisation history, learning curves, parallel coordinates,
    parameter importance, contour; with optuna.visualization) and write it as an Optuna study, EXP/optuna.journal."""
    from dist_spk.runs import storage
    from dist_spk.tune.plots import draw_report
    from dist_spk.tune.results import mirrored_experiment

    local = mirrored_experiment(exp)
    for path in draw_report(local):
        typer.echo(f"wrote {path}")
    typer.echo(f"wrote {local / 'optuna.journal'}; open it with: optuna-dashboard {local / 'optuna.journal'}")
    if tables:
        from dist_spk.tune.tables import write_tables

        for path in write_tables(local):
            typer.echo(f"\n{path.read_text()}(also {path.with_suffix('.csv')})")
    if storage.is_remote(exp):
        storage.upload(local, exp, skip=(*storage.HEAVY, "trials", "wandb", "data", "cache"))
        typer.echo(f"uploaded the plots, optuna.journal and report/ to {exp}")


# ---------------------------------------------------------------------------------------------
# evaluate
# ---------------------------------------------------------------------------------------------


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
) -> None:
    """EER, minDCF (p 0.01 and 0.05), clustering ARI/NMI/FMI on a trial list; AS-norm figures with --asnorm."""
    from dist_spk.speaker.inference import evaluate_speaker

    metrics = evaluate_speaker(checkpoint, data, trials, format=format, asnorm_cohort=asnorm, clustering=clustering)
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
    clustering: Annotated[str, typer.Option(help="agglomerative (pyannote's), hdbscan or bisecting_kmeans.")]
    = "agglomerative",
) -> None:
    """Full diarization with our two models: DER (collar 0 and ±0.25 s), per-file table, RTTMs."""
    import json

    from dist_spk.console import Stages, internals_to
    from dist_spk.pipeline.evaluate import SAMPLE, evaluate_pipeline, print_report

    if data != SAMPLE and not Path(data).exists():
        raise DistSpkError(f"--data {data}: no such dataset (or use {SAMPLE})")
    if iterations < 1:
        raise DistSpkError("--iterations must be at least 1")
    if rttm_dir is None:
        rttm_dir = out.with_suffix("").with_name(out.stem + "_rttm") if out else Path("rttm")
    stages = Stages("evaluate pipeline", 3 if tune_on else 1)
    with internals_to((out.parent if out else rttm_dir.parent) / "logs" / "evaluate-pipeline.log") as log:
        report = evaluate_pipeline(segmentation, embedding, data if data == SAMPLE else Path(data), split=split,
                                   tune_on=tune_on, iterations=iterations, protocol=protocol, rttm_dir=rttm_dir,
                                   clustering=clustering, stages=stages)
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
    stages.summary("pipeline evaluated", figures=figures, produced=[
        ("RTTMs", f"{rttm_dir}/"), *([("report", str(out))] if out else []), ("logs", str(log.path))],
        next_steps=[] if tune_on else ["--tune-on dev tunes the pipeline's parameters first"])


@app.command("embed")
def embed(
    checkpoint: Annotated[Path, typer.Option(help="A speaker-encoder checkpoint or run directory.")],
    audio: Annotated[list[Path], typer.Argument(help="Audio files to embed.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="NumPy .npz: one array per input file.")] = Path(
        "embeddings.npz"),
) -> None:
    """Write speaker embeddings of audio files (whole files, 16 kHz after resampling)."""
    import numpy as np

    from dist_spk.data.speakers import Utterance
    from dist_spk.speaker.inference import embed_utterances, load_speaker_module

    missing = [str(p) for p in audio if not p.is_file()]
    if missing:
        raise DistSpkError(f"no such audio file: {', '.join(missing)}")
    module = load_speaker_module(checkpoint)
    utterances = [Utterance(str(p), p, "?") for p in audio]
    embeddings = embed_utterances(module, utterances, max_seconds=float("inf"))
    np.savez(out, **{str(p): e for p, e in zip(audio, embeddings, strict=True)})
    typer.echo(f"wrote {out}: {len(audio)} embeddings of size {embeddings.shape[1]}")


@export_app.command("spk")
def export_spk(
    checkpoint: Annotated[Path, typer.Option(help="A speaker-encoder checkpoint or run directory.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="TorchScript file to write.")] = Path("encoder.ts"),
) -> None:
    """Export the encoder to TorchScript: torch.jit.load(out)(wave (1, N), torch.tensor([N])) -> (1, emb)."""
    from dist_spk.speaker.inference import export_torchscript

    typer.echo(f"wrote {export_torchscript(checkpoint, out)}")


# ---------------------------------------------------------------------------------------------
# demo
# ---------------------------------------------------------------------------------------------


@app.command("demo")
def demo(
    out: Annotated[Path, typer.Option(help="Demo folder: corpus/ and the runs.")] = Path("demo"),
    size: Annotated[str, typer.Option(help="Corpus size: tiny, compact, small or medium.")] = "small",
    seed: Annotated[int, typer.Option()] = 0,
    verbose: Verbose = False,
) -> None:
    """Run the main job locally on the built-in synthetic corpus (generated on first use)."""
    from dist_spk.console import Stages, internals_to, set_verbose

    set_verbose(verbose)
    stages = Stages("demo", 6)
    with internals_to(out / "logs" / "demo.log") as log:
        typer.echo(f"[demo] what the libraries say (Ray, Lightning, pyannote, W&B, warnings): {log.path}; each "
                   "search's own: its logs/ folder; --verbose shows them here")
        _demo_stages(stages, out, size=size, seed=seed)


def _demo_stages(stages, out: Path, *, size: str, seed: int) -> None:
    import json

    from dist_spk.data.check import check_diarization
    from dist_spk.data.speakers import check_speakers, load_speakers
    from dist_spk.data.synth import synthesize
    from dist_spk.launch.pretrained import pretrained_segmentation
    from dist_spk.pipeline.evaluate import evaluate_pipeline
    from dist_spk.segmentation.evaluate import evaluate_segmentation
    from dist_spk.speaker.inference import evaluate_speaker

    corpus = out / "corpus"
    made = (corpus / "corpus.json").is_file()
    with stages.stage(f"the demo corpus in {corpus}: " + ("checking it" if made else f"synthesising ({size})")):
        if not made:
            synthesize(corpus, seed=seed, size=size)
        report = check_diarization(corpus / "diar")
        rows = {split: stats.as_row() for split, stats in report.stats.items()}
        speakers = check_speakers(load_speakers(corpus / "spk"), trials_path=corpus / "spk" / "trials.txt")
        _print_report(f"demo corpus {corpus / 'diar'}", rows, report.problems + speakers.problems, json_out=None)
        typer.echo(f"speaker data {corpus / 'spk'}: {len(speakers.manifest.speakers())} speakers, "
                   f"{len(speakers.manifest.utterances)} utterances, {len(speakers.trials)} held-out trials")
    with stages.stage("the starting segmentation model (as teams fine-tune pyannote/segmentation-3.0)"):
        start = pretrained_segmentation(log=typer.echo)  # trained once per machine, then cached
        typer.echo(f"segmentation trials fine-tune {start}")
    with stages.stage("searching segmentation hyper-parameters (ASHA, 6 trials, Ray on this machine)"):
        _demo_search("seg", corpus / "diar", out / "tune-seg", f"model.init={start}", "trainer.epochs=3",
                     "search.grace_period=1")
        _print_baseline_check(out / "tune-seg")
    with stages.stage("searching speaker-encoder hyper-parameters (ASHA, 6 trials)"):
        # its noise augmentation mixes the corpus's own noises (hum, babble, coloured noise)
        _demo_search("spk", corpus / "spk", out / "tune-spk", f"data.noise_dir={(corpus / 'noise').resolve()}")
    seg_best, spk_best = out / "tune-seg" / "best", out / "tune-spk" / "best"
    with stages.stage("scoring the best models on held-out data (test conversations, unseen voices)"):
        seg = evaluate_segmentation(seg_best / "checkpoint.ckpt", corpus / "diar", split="test")
        (seg_best / "test_metrics.json").write_text(json.dumps(seg, indent=1))
        spk = evaluate_speaker(spk_best / "checkpoint.ckpt", corpus / "spk", corpus / "spk" / "trials.txt")
        (spk_best / "test_metrics.json").write_text(json.dumps(spk, indent=1))
    with stages.stage("the two best models as one diarization pipeline: tuned on dev, scored on test"):
        pipeline = evaluate_pipeline(seg_best, spk_best, corpus / "diar", split="test", tune_on="dev", iterations=50,
                                     rttm_dir=out / "pipeline" / "rttm")
        (out / "pipeline" / "report.json").write_text(json.dumps(pipeline, indent=1))
    oracle = f"{pipeline['baselines']['one_speaker_oracle_speech']['collar_0']['der']:.1%} (one speaker, oracle speech)"
    tuned = pipeline["tuned"]["overall"]["collar_0"]
    stages.summary(f"demo done: {out}", figures=[
        ("pipeline DER, test files (tuned on dev)", f"{tuned['der']:.1%}", oracle),
        ("  confusion / false alarm / miss",
         f"{tuned['confusion']:.1%} / {tuned['false_alarm']:.1%} / {tuned['miss']:.1%}", ""),
        ("pipeline DER, default parameters", f"{pipeline['default']['overall']['collar_0']['der']:.1%}", ""),
        ("segmentation DER, test chunks", f"{seg['DiarizationErrorRate']:.1%}",
         f"{seg.get('DiarizationErrorRate/OneSpeakerOracleSpeech', float('nan')):.1%} (one speaker, oracle speech)"),
        ("speaker EER, held-out voices", f"{spk['eer']:.1%}", "50.0% (chance)"),
    ], produced=[
        ("searches", f"{out / 'tune-seg'}, {out / 'tune-spk'} (summary.csv, plots/, optuna.journal)"),
        ("best models", f"{seg_best}, {spk_best}"),
        ("pipeline", f"{out / 'pipeline' / 'report.json'}, RTTMs in {out / 'pipeline' / 'rttm'}"),
        ("logs", f"{out / 'logs'}, {out / 'tune-seg' / 'logs'}, {out / 'tune-spk' / 'logs'}"),
    ], next_steps=[
        f"dist-spk report {out / 'tune-seg'}   (tables and plots of a search)",
        f"optuna-dashboard {out / 'tune-seg' / 'optuna.journal'}",
        "dist-spk tune seg --data YOUR_DATA --out EXP --preset cluster   (on your data; README: cluster)",
    ])


def _print_baseline_check(exp: Path) -> None:
    """The segmentation trials beside the trivial baselines on the same dev chunks."""
    from dist_spk.segmentation.task import SEG_BASELINES
    from dist_spk.tune.results import against_baselines

    found = against_baselines(exp, SEG_BASELINES)
    if not found:
        return
    for name in SEG_BASELINES:
        beat = sum(best < values[name] for _, best, values in found)
        typer.echo(f"[demo] {beat} of {len(found)} segmentation trials beat {name.split('/')[-1]} on the same dev "
                   f"chunks (DER {found[0][2][name]:.3f}; trials {min(b for _, b, _ in found):.3f}"
                   f"-{max(b for _, b, _ in found):.3f})")


def _demo_search(task: str, data: Path, exp: Path, *overrides: str) -> None:
    """A local ASHA search of the task's shipped space with the local preset, and its plots."""
    import shutil

    from dist_spk.config import load_config
    from dist_spk.launch.run import OBJECTIVES
    from dist_spk.tune.live_view import short_key, short_value
    from dist_spk.tune.runner import tune_task
    from dist_spk.tune.space import default_space_path, load_space

    if (exp / "summary.csv").is_file():
        typer.echo(f"{task} search already done in {exp}")
        return
    shutil.rmtree(exp, ignore_errors=True)  # what an interrupted demo left
    config = load_config(task, overrides=[f"data.root={data.resolve()}", *overrides])
    params = load_space(default_space_path(task), task)
    rows, _ = tune_task(task, config, params, exp_dir=exp, table=False)  # the demo's summary names the best
    objective = OBJECTIVES[task]
    best = rows[0]  # ranked best first
    if best[f"best_{objective}"] is None:
        raise DistSpkError(f"no {task} trial finished an epoch: see {exp / 'logs'}")
    searched = " ".join(f"{short_key(p.key, [q.key for q in params])}={short_value(best.get(p.key))}" for p in params
                        if p.kind != "constant")
    typer.echo(f"best of {len(rows)} {task} trials: {best['trial_id']}, {objective} {best[f'best_{objective}']:.4f} "
               f"at epoch {best['best_epoch'] + 1}: {searched}")


@app.command("doctor")
def doctor(
    out: Annotated[str, typer.Option("--out", "-o", help="Experiment directory to check: on a cluster, the shared "
                                     "storage or object store (s3://...) your searches will write to.")] = ".",
    preset: Preset = "cluster",
    no_scale: Annotated[bool, typer.Option("--no-scale", help="Check only node types that have a node up; never ask "
                                           "the autoscaler for one.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the autoscaler to add a node of a type.")] = 900,
) -> None:
    """Check the cluster (or this machine) before a search: every node type's torch/CUDA/NCCL/driver, audio
    decoding, shared storage, W&B login and the hub token. Exit 1 on any blocker."""
    from dist_spk.launch.doctor import FAIL, render, run_doctor

    rows = run_doctor(out=out, preset=preset, scale=not no_scale, timeout=timeout, progress=typer.echo)
    typer.echo(render(rows), nl=False)
    failed = [row for row in rows if row.status == FAIL]
    if failed:
        typer.echo(f"{len(failed)} blocker(s): " + ", ".join(f"{row.check} on {row.where}" for row in failed))
        raise typer.Exit(1)
    typer.echo("no blocker: the cluster is ready for `ray job submit ... -- python ray_jobs/tune_speaker.py ...`")


def main(argv: list[str] | None = None, *, prog_name: str = "dist-spk") -> None:
    """Console-script entry point; ``ray_jobs/*.py`` call it with their command prefixed to ``argv``."""
    try:
        app(args=argv, prog_name=prog_name)
    except DistSpkError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
