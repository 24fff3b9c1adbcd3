"""The per-trial driver: a Tune function trainable that runs one Ray Train worker group.

Ray 2.60's pattern (../shared/FINDINGS.md): the driver builds a ``TorchTrainer`` and calls ``fit()``;
workers call ``ray.train.report`` each epoch. Ray's own ``TuneReportCallback`` forwards only the
metrics; :class:`ForwardReports` also hands each epoch's checkpoint to the driver, which reports
both to Tune with ``tune.report``. So Tune holds every trial's latest checkpoint, which is what

- PBT needs (a trial continues from a better trial's checkpoint with perturbed hyper-parameters),
- a retried trial and ``--resume`` restart from (``tune.get_checkpoint()``).

What Tune holds is a pointer (``pointer.json``: the Train checkpoint's path relative to ``EXP``), not a copy: Ray
Train's upload is each epoch's one durable copy of the weights.

Each start of a trial is a fresh Ray Train run ``train-<trial id>-<n>`` under ``EXP/train``, so a
trial never silently restores its own older checkpoint where Tune gave it another one. Within a
run, a lost worker restarts the group from that run's last checkpoint (Train's FailureConfig).
The trial's run directory (config.yaml, metrics.jsonl, checkpoints/) is ``EXP/trials/<trial id>``. ``EXP`` is a
path or an object-store URI (:mod:`dist_spk.runs.storage`).

In the local test mode a 1-worker trial skips the worker group (``in_process``, tune/runner.py
``trains_in_process``): it trains in this process, which Tune reuses for the next trial, through
:class:`dist_spk.train.session.TrialSession`, with the same checkpoint layout and the same reports to Tune.
"""

from __future__ import annotations

import copy
import json
import posixpath
import tempfile
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from ray.train import UserCallback

from dist_spk.config import config_from_dict, dump_config
from dist_spk.config.renames import current_key
from dist_spk.runs import storage
from dist_spk.runs.payload import worker_payload
from dist_spk.runs.run_dir import checkpoints_dir
from dist_spk.runs.startup import stamp

CHECKPOINT_PATH_KEY = "checkpoint_path"  # the metric Ray's TuneReportCallback uses for the same thing
POINTER = "pointer.json"  # what a Tune checkpoint of a trial holds
STARTS_FILE = "starts.jsonl"  # in a trial's run directory: every start of the trial (_record_start)


def trial_config(task: str, base: dict[str, Any], params: dict[str, Any]) -> Any:
    """The base config (plain dict) with the trial's sampled values (dotted keys) set, validated; a variant's
    keys (``params["variant"]``: its name and dotted keys, :mod:`dist_spk.tune.space`) are set the same way."""
    from dist_spk.tune.space import VARIANT

    data = copy.deepcopy(base)
    variant = params.get(VARIANT)
    settings = {k: v for k, v in params.items() if k != VARIANT}
    if isinstance(variant, dict):
        settings |= {k: v for k, v in variant.items() if k != "name"}
    for key, value in settings.items():
        *sections, name = current_key(key).split(".")  # an experiment written before a key's rename resumes
        node = data
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value.item() if hasattr(value, "item") else value  # numpy scalars from Tune's samplers
    return config_from_dict(task, data)


class ForwardReports(UserCallback):
    """Runs in the Ray Train controller: passes each report (rank 0's metrics + checkpoint) to the driver."""

    def __init__(self, queue):
        self.queue = queue  # a ray.util.queue.Queue of size 1: the controller waits until the driver took it

    def after_report(self, run_context, metrics, checkpoint):
        row = dict(metrics[0])
        if checkpoint is not None:
            row[CHECKPOINT_PATH_KEY] = checkpoint.path
        self.queue.put((row, checkpoint))


def _restored_checkpoint(exp: str) -> str | None:
    """Where Tune's checkpoint for this trial (its own, or PBT's donor's) points: a Train checkpoint file."""
    from ray import tune

    from dist_spk.train.session import CHECKPOINT_NAME

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as folder:
        relative = json.loads(Path(folder, POINTER).read_text())["checkpoint"]
    return storage.join(exp, relative, CHECKPOINT_NAME)


def _report(metrics: dict[str, Any], checkpoint, exp: str) -> None:
    """``tune.report``, with a pointer to the epoch's Train checkpoint (a few bytes for Tune to store)."""
    from ray import tune

    if checkpoint is None:
        tune.report(metrics)
        return
    _, root = storage.filesystem(exp)
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, POINTER).write_text(json.dumps({"checkpoint": posixpath.relpath(checkpoint.path, root)}))
        tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))  # uploaded before it returns


def _record_start(run_location: str, train_run: str, resumed_from: str | None) -> None:
    """``RUN/starts.jsonl``: one line per start of the trial, its Ray Train run and the checkpoint it continued from
    (its own after a failure or ``--resume``, a donor's after a PBT exploit; null for a fresh start)."""
    import time

    path = storage.join(run_location, STARTS_FILE)
    before = storage.read_text(path) if storage.is_file(path) else ""
    row = {"train_run": train_run, "resumed_from": resumed_from, "time": round(time.time(), 3)}
    storage.write_text(path, before + json.dumps(row) + "\n")


def _run_name(exp: str, trial_id: str) -> str:
    starts = [name for name in storage.list_names(storage.join(exp, "train")) if name.startswith(f"train-{trial_id}-")]
    return f"train-{trial_id}-{len(starts)}"


def _stop_requested():
    """Whether Tune asked this trial to stop (ASHA, the search's end): the event its function-trainable session
    sets. The session is Ray's internal object (``ray.train._internal.session``), read without a public API: without
    it, a trial is only ever stopped by ending its process, as Tune does when the trial does not stop by itself."""
    try:
        from ray.train._internal.session import get_session

        event = get_session().stop_event
    except (ImportError, AttributeError):  # another Ray: never asked, the process is ended instead
        return lambda: False
    return event.is_set


def _train_in_process(task: str, payload: dict[str, Any], config, *, trial_id: str, name: str, exp_dir: str,
                      objective: str) -> None:
    """The trial's loop in this process (tune/runner.py ``trains_in_process``), reporting to Tune as a worker group's
    driver does: each epoch's metrics with a pointer to its checkpoint."""
    stamp(payload, "entered")  # no worker group to start: what follows is imports (none, in a reused process)
    import torch

    from dist_spk.train.session import TrialSession, TrialStopped
    from dist_spk.train.worker import worker_loop

    torch.set_num_threads(max(1, int(config.trainer.cpus_per_worker)))  # as Ray gives a worker of that size

    def report_to(metrics: dict[str, Any], folder: Path | None) -> None:
        row = {**metrics, **({CHECKPOINT_PATH_KEY: str(folder)} if folder is not None else {})}
        _report(row, SimpleNamespace(path=str(folder)) if folder is not None else None, exp_dir)

    session = TrialSession(run_dir=Path(payload["run_dir"]), resume_from=payload.get("resume_from"),
                           trial_id=trial_id, checkpoints_root=Path(exp_dir, "train", name), objective=objective,
                           report_to=report_to, should_stop=_stop_requested())
    try:
        worker_loop(task)(payload, session)
    except TrialStopped:
        return


def trial_driver(params: dict[str, Any], *, task: str, base: dict[str, Any], exp_dir: str,
                 extras: dict[str, Any], in_process: bool = False) -> None:
    """Run one trial: resolve its config, fit its worker group (or, ``in_process``, train here), report every epoch
    (and checkpoint) to Tune."""
    from ray import tune
    from ray.util.queue import Empty, Queue

    from dist_spk.launch.ray_train import torch_trainer, training_error
    from dist_spk.launch.run import OBJECTIVES
    from dist_spk.tune.runner import STOPPED_FILE

    objective = OBJECTIVES[task]
    trial_id = tune.get_context().get_trial_id()
    config = trial_config(task, base, params)
    run_location = storage.join(exp_dir, "trials", trial_id)
    if storage.is_file(storage.join(run_location, STOPPED_FILE)):
        return  # ASHA stopped this trial before --resume; Tune's snapshot still had it running (tune/runner.py)
    if not storage.is_remote(run_location):
        checkpoints_dir(Path(run_location)).mkdir(parents=True, exist_ok=True)
    # after a PBT exploit: the donor's config, perturbed
    storage.write_text(storage.join(run_location, "config.yaml"), dump_config(config))
    restored = _restored_checkpoint(exp_dir)

    name = _run_name(exp_dir, trial_id)
    _record_start(run_location, name, restored)
    # names this process's output in the driver's logs (dist_spk.launch.worker_logs)
    print(f"[trial {trial_id}] {'run' if in_process else 'Ray Train run'} {name}"
          + (f", continuing from {restored}" if restored else ""), flush=True)
    payload = worker_payload(task, config, run_location, extras=extras, resume_from=restored, trial_id=trial_id)
    if in_process:
        _train_in_process(task, payload, config, trial_id=trial_id, name=name, exp_dir=exp_dir, objective=objective)
        return
    reports = Queue(maxsize=1, actor_options={"num_cpus": 0})
    trainer = torch_trainer(payload, config.trainer, storage_location=storage.join(exp_dir, "train"),
                            name=name, objective=objective,
                            callbacks=(ForwardReports(reports),), keep_all=config.search.trial_scheduler == "pbt")
    # fit() blocks, and tune.report must be called from this thread: fit in a helper thread, report here
    outcome: dict[str, Any] = {}

    def fit() -> None:
        try:
            outcome["result"] = trainer.fit()
        except BaseException as error:  # noqa: BLE001 - re-raised in the trial's thread below
            outcome["error"] = error

    fitting = threading.Thread(target=fit, name=f"fit-{trial_id}", daemon=True)
    fitting.start()
    while fitting.is_alive() or not reports.empty():
        try:
            metrics, checkpoint = reports.get(timeout=1.0)
        except Empty:
            continue
        _report(metrics, checkpoint, exp_dir)
    fitting.join()
    error = outcome.get("error") or outcome["result"].error
    if error is not None:
        raise training_error(error)
