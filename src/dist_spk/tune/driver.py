"""The per-trial driver: a Tune function trainable that runs one Ray Train worker group.

Ray 2.60's pattern (../shared/FINDINGS.md): the driver builds a ``TorchTrainer`` and calls ``fit()``;
workers call ``ray.train.report`` each epoch. Ray's own ``TuneReportCallback`` forwards only the
metrics; :class:`ForwardReports` also hands each epoch's checkpoint to the driver, which reports
both to Tune with ``tune.report``. So Tune holds every trial's latest checkpoint, which is what

- PBT needs (a trial continues from a better trial's checkpoint with perturbed hyper-parameters),
- a retried trial and ``--resume`` restart from (``tune.get_checkpoint()``).

Each start of a trial is a fresh Ray Train run ``train-<trial id>-<n>`` under ``EXP/train``, so a
trial never silently restores its own older checkpoint where Tune gave it another one. Within a
run, a lost worker restarts the group from that run's last checkpoint (Train's FailureConfig).
The trial's run directory (config.yaml, metrics.jsonl, checkpoints/) is ``EXP/trials/<trial id>``.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

from ray.train import UserCallback

from dist_spk.config import config_from_dict, save_config, to_dict
from dist_spk.train.run_dir import checkpoints_dir
from dist_spk.train.startup import launched

CHECKPOINT_PATH_KEY = "checkpoint_path"  # the metric Ray's TuneReportCallback uses for the same thing


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
        *sections, name = key.split(".")
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


def _restored_checkpoint(run_dir: Path) -> Path | None:
    """Tune's checkpoint for this trial (its own, or PBT's donor's), copied into the run directory."""
    from ray import tune

    from dist_spk.train.session import CHECKPOINT_NAME

    checkpoint = tune.get_checkpoint()
    if checkpoint is None:
        return None
    local = run_dir / "restored"
    checkpoint.to_directory(str(local))
    return local / CHECKPOINT_NAME


def _run_name(exp_dir: Path, trial_id: str) -> str:
    starts = len(list((exp_dir / "train").glob(f"train-{trial_id}-*")))
    return f"train-{trial_id}-{starts}"


def trial_driver(params: dict[str, Any], *, task: str, base: dict[str, Any], exp_dir: str,
                 extras: dict[str, Any]) -> None:
    """Run one trial: resolve its config, fit its worker group, report every epoch (and checkpoint) to Tune."""
    from ray import tune
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer
    from ray.util.queue import Empty, Queue

    from dist_spk.train.launch import ray_worker, scaling_config, torch_config, training_error

    trial_id = tune.get_context().get_trial_id()
    config = trial_config(task, base, params)
    run_dir = Path(exp_dir) / "trials" / trial_id
    checkpoints_dir(run_dir).mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir)  # after a PBT exploit: the donor's config, perturbed
    payload = {"task": task, "config": to_dict(config), "run_dir": str(run_dir), **extras}
    restored = _restored_checkpoint(run_dir)
    if restored is not None:
        payload["resume_from"] = str(restored)

    payload = launched(payload)
    reports = Queue(maxsize=1, actor_options={"num_cpus": 0})
    trainer = TorchTrainer(
        ray_worker,
        train_loop_config=payload,
        scaling_config=scaling_config(config.trainer),
        torch_config=torch_config(config.trainer),
        run_config=RunConfig(
            name=_run_name(Path(exp_dir), trial_id),
            storage_path=str(Path(exp_dir) / "train"),
            callbacks=[ForwardReports(reports)],
            failure_config=FailureConfig(max_failures=2),  # a lost worker restarts the group from its checkpoint
            checkpoint_config=CheckpointConfig(num_to_keep=1),
        ),
    )
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
        tune.report(metrics, checkpoint=tune.Checkpoint(checkpoint.path, checkpoint.filesystem)
                    if checkpoint is not None else None)
    fitting.join()
    error = outcome.get("error") or outcome["result"].error
    if error is not None:
        raise training_error(error)
