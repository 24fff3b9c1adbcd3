"""``dist-spk train``: one run, no search. Check the data, write the run directory, launch the loop."""

from __future__ import annotations

import json
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from dist_spk.config import save_config
from dist_spk.config.registry import TASKS
from dist_spk.console import internals_to
from dist_spk.cuda import require_cuda
from dist_spk.data.problems import format_problems
from dist_spk.errors import DataError, DistSpkError
from dist_spk.launch.ray_train import check_ray_run, run_ray_train
from dist_spk.launch.worker_logs import DRIVER_LOG, LOGS_DIR, capture_worker_output
from dist_spk.pipeline.model_folder import link_model_file
from dist_spk.runs import storage
from dist_spk.runs.checkpoints import check_checkpoint
from dist_spk.runs.payload import worker_payload
from dist_spk.runs.run_dir import prepare_run_dir, read_metrics, resolve_checkpoint
from dist_spk.train.session import storage_error
from dist_spk.train.worker import run_local


def _refuse(errors: list) -> None:
    """Stop before training when the dataset check found errors, listing them all."""
    if errors:
        raise DataError(f"the dataset has {len(errors)} error(s); nothing was trained:\n" + format_problems(errors))


def check_segmentation_data(config) -> None:
    """Run ``dist-spk data check`` on the run's dataset; refuse to train on any error."""
    from dist_spk.data.check import check_diarization, check_protocol
    from dist_spk.data.protocol import load_protocol

    root = Path(config.data.root)
    if not config.data.root:
        raise DataError("data.root is not set: pass --data ROOT")
    if root.suffix in (".yml", ".yaml"):
        report = check_protocol(load_protocol(root, config.data.protocol))
    else:
        report = check_diarization(root)
    _refuse(report.errors)
    init = Path(config.model.init).expanduser()
    if config.model.init != "random" and init.exists():  # a local checkpoint: plain tensors only, before any run starts
        from dist_spk.runs.checkpoints import check_plain

        check_plain(init)


def prepare_training_cache(config, task: str) -> dict[str, Any]:
    """With ``data.cache``: the training cache checked against the dataset (built first when missing); its payload
    entry. A stale or damaged cache is one error here, before any worker starts."""
    from dist_spk.data.stored_cache import check_stored_cache, stored_cache_exists
    from dist_spk.data.training_cache import MANIFEST, dataset_sources, open_cache
    from dist_spk.launch.prepare_cache import prepare_cache
    from dist_spk.runs import storage

    if not config.data.cache:
        return {}
    if task == "seg":
        sources = dataset_sources(config.data.root, task="seg", protocol=config.data.protocol)
    else:
        sources = [u.path for u in _speaker_manifest(config).utterances]
    remote = storage.is_remote(config.data.cache)  # on an object store: each node fetches it (data/stored_cache.py)
    cache = storage.normalize(config.data.cache) if remote else str(Path(config.data.cache).expanduser().resolve())
    if not (stored_cache_exists(cache) if remote else (Path(cache) / MANIFEST).is_file()):
        print(f"[data] preparing the training cache {cache} ({len(set(sources))} files)", flush=True)
        prepare_cache(sources, cache)  # a Ray Data job across the nodes when joined to a cluster
    if remote:
        check_stored_cache(cache, sources=sources)
    else:
        open_cache(cache, sources=sources)
    return {"training_cache": cache}


def prepare_segmentation(config, run_dir: Path) -> dict[str, Any]:
    """Build pyannote's metadata cache once, and download a hub model's checkpoint once, before any worker
    starts (workers never need the hub token); return the payload entries."""
    from dist_spk.data.protocol import load_protocol
    from dist_spk.hub import is_hub_id
    from dist_spk.segmentation.cache import cache_path, prepare_cache
    from dist_spk.segmentation.model import fetch_hub_checkpoint
    from dist_spk.train.seg_loop import build_task

    protocol = load_protocol(config.data.root, config.data.protocol)
    cache_dir = Path(config.data.cache_dir) if config.data.cache_dir else run_dir / "cache"
    path = cache_path(config.data, cache_dir, protocol.name)
    prepare_cache(build_task(config, protocol, cache=None), path)
    extras = {"cache_file": str(path.resolve()), **prepare_training_cache(config, "seg")}
    if is_hub_id(config.model.init):
        checkpoint = fetch_hub_checkpoint(config.model.init, token_env=config.model.hub_token_env,
                                          cache_dir=cache_dir / "hub")
        extras["model_init"] = str(checkpoint.resolve())
    return extras


def _speaker_manifest(config):
    from dist_spk.data.speakers import load_speakers

    if not config.data.root:
        raise DataError("data.root is not set: pass --data ROOT")
    return load_speakers(config.data.root, format=config.data.format, min_seconds=config.data.min_segment_seconds,
                         speaker_scope=config.data.speaker_scope)


def _trials_path(config, manifest) -> Path | None:
    if config.data.trials:
        return Path(config.data.trials)
    default = manifest.root / "trials.txt"
    return default if default.is_file() else None


def check_speaker_data(config) -> None:
    """Check the augmentation folders, decode every utterance and check the trial list; refuse on any error."""
    from dist_spk.data.audio import augmentation_files
    from dist_spk.data.speakers import check_speakers

    augmentation_files(config.data)  # data.noise_dir, data.rir_dir: one error naming the key, before any worker
    manifest = _speaker_manifest(config)
    result = check_speakers(manifest, trials_path=_trials_path(config, manifest))
    _refuse([p for p in result.problems if p.severity == "error"])


def prepare_speaker(config, run_dir: Path) -> dict[str, Any]:
    """Split speakers into training and trial speakers; write the manifests and trials into ``run_dir/data``.

    As with VoxCeleb1, every speaker named in the trial list is held out of training; without a
    list, ``data.heldout_fraction`` of the speakers are held out and a balanced list is generated.
    """
    from dist_spk.data.speakers import generate_trials, heldout_split
    from dist_spk.data.trials import format_trials, parse_trials
    from dist_spk.speaker.data import write_manifest

    manifest = _speaker_manifest(config)
    path = _trials_path(config, manifest)
    if path is not None:
        trials, _ = parse_trials(path)
    else:
        _, heldout = heldout_split(manifest, fraction=config.data.heldout_fraction, seed=config.trainer.seed)
        trials = generate_trials(manifest, heldout, seed=config.trainer.seed)
    keys = manifest.by_key()
    trial_keys = sorted({t.enroll for t in trials} | {t.test for t in trials})
    heldout_speakers = {keys[k].speaker for k in trial_keys}
    train = [u for u in manifest.utterances if u.speaker not in heldout_speakers]
    if len({u.speaker for u in train}) < 2:
        raise DataError(f"{manifest.root}: fewer than two speakers remain for training once the "
                        f"{len(heldout_speakers)} trial speakers are held out")
    folder = Path(run_dir) / "data"
    write_manifest(folder / "train.jsonl", train)
    write_manifest(folder / "eval.jsonl", [keys[k] for k in trial_keys])
    (folder / "trials.txt").write_text(format_trials(trials))
    return {"data_dir": str(folder.resolve()), **prepare_training_cache(config, "spk")}


# read from the task registry (config/registry.py)
CHECKS = {name: spec.entry("check") for name, spec in TASKS.items()}
PREPARES = {name: spec.entry("prepare") for name, spec in TASKS.items()}
OBJECTIVES = {name: spec.objective for name, spec in TASKS.items()}


def task_ranked_by(objective: str, *, source: str) -> str:
    """The task whose searches rank trials by ``objective`` (how a finished experiment names its task)."""
    for task, metric in OBJECTIVES.items():
        if metric == objective:
            return task
    raise DistSpkError(f"{source}: ranks trials by {objective!r}, which is no task's objective "
                       f"({', '.join(OBJECTIVES.values())})")


def summarize(run_dir: Path, objective: str, seconds: float) -> dict[str, Any]:
    """Best epoch by ``objective`` (lower is better), written to ``summary.json``."""
    rows = read_metrics(run_dir)
    scored = [row for row in rows if row.get(objective) is not None]
    best = min(scored, key=lambda row: row[objective]) if scored else None
    summary = {"objective": objective, "epochs": len(rows), "best_epoch": best["epoch"] if best else None,
               "best": best, "last": rows[-1] if rows else None, "wall_seconds": round(seconds, 1)}
    (Path(run_dir) / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def run_training(task: str, config, *, out: str | Path, resume: bool = False,
                 while_training: AbstractContextManager | None = None) -> dict[str, Any]:
    """Train one model; return the summary (best epoch and its metrics).

    Order matters: the dataset is checked before anything is written or any Ray resource is
    taken, and pyannote's cache is prepared before the workers start. ``while_training`` is entered
    once all that passed, around the training itself (the CLI streams the run to W&B with it).

    ``out`` is a path or an object-store URI (then the run trains under Ray, which uploads its checkpoints, and
    this process writes its small files in a local mirror and uploads them).
    """
    started = time.perf_counter()
    CHECKS[task](config)
    location, mirror = storage.normalize(out), storage.local_mirror(out)
    remote = storage.is_remote(location)
    if config.trainer.workers == 0:
        if remote:
            raise storage_error(location)
        require_cuda(config.trainer.use_gpu)
    else:
        if remote:
            storage.check_writable(location)
        check_ray_run(config.trainer)
    resume_from = prepare_run_dir(location, resume=resume)
    if task == "seg" and not remote:  # RUN/checkpoints is a pyannote model folder: Model.from_pretrained(it)
        link_model_file(Path(location) / "checkpoints")
    if resume_from is not None:
        check_checkpoint(resolve_checkpoint(resume_from)[0], task)
    save_config(config, mirror)
    extras = PREPARES[task](config, mirror)
    if remote:
        extras = {key: storage.relocate(value, mirror, location) for key, value in extras.items()}
        storage.upload(mirror, location, skip=(*storage.HEAVY, "wandb", *RUN_FILES))
    payload = worker_payload(task, config, location, extras=extras, resume_from=resume_from)
    with while_training or nullcontext():
        if config.trainer.workers == 0:
            run_local(payload)
        else:
            logs = mirror / LOGS_DIR
            with internals_to(logs / DRIVER_LOG), capture_worker_output(logs, show=("[epoch ", "[startup]")):
                print(f"[train] Ray's and the workers' messages: {logs}/ (--verbose shows them here)", flush=True)
                run_ray_train(payload, config.trainer, storage_location=storage.join(location, "ray"),
                              objective=OBJECTIVES[task])
    if remote:  # what rank 0 published
        storage.download(location, mirror, skip=(*storage.HEAVY, "data", "cache", "wandb"))
    summary = summarize(mirror, OBJECTIVES[task], time.perf_counter() - started)
    if remote:
        storage.upload(mirror, location, skip=(*storage.HEAVY, "data", "cache", *RUN_FILES))
    return summary


RUN_FILES = ("metrics.jsonl", "steps.jsonl", "startup.json")  # rank 0 publishes these; never overwritten from here
