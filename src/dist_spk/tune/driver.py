"""The per-trial driver: a Tune function trainable that runs one Ray Train worker group.

Ray 2.60's supported pattern (../shared/FINDINGS.md): the driver builds a ``TorchTrainer`` whose
``RunConfig`` carries ``TuneReportCallback``; workers call ``ray.train.report`` each epoch and Tune
(and so ASHA) sees every report. The driver itself never reports. The worker group's run is named
after the trial (``train-<trial id>``) under ``EXP/train``: a restarted or resumed trial finds its
own checkpoints there. Each trial also writes the usual run directory under ``EXP/trials/<trial id>``.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from dist_spk.config import config_from_dict, save_config, to_dict
from dist_spk.train.run_dir import checkpoints_dir


def trial_config(task: str, base: dict[str, Any], params: dict[str, Any]) -> Any:
    """The base config (plain dict) with the trial's sampled values (dotted keys) set, validated."""
    data = copy.deepcopy(base)
    for key, value in params.items():
        *sections, name = key.split(".")
        node = data
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value.item() if hasattr(value, "item") else value  # numpy scalars from Tune's samplers
    return config_from_dict(task, data)


def trial_driver(params: dict[str, Any], *, task: str, base: dict[str, Any], exp_dir: str,
                 extras: dict[str, Any]) -> None:
    """Run one trial: resolve its config, then fit its worker group with reports forwarded to Tune."""
    from ray import tune
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    from dist_spk.train.launch import ray_worker, scaling_config

    trial_id = tune.get_context().get_trial_id()
    config = trial_config(task, base, params)
    run_dir = Path(exp_dir) / "trials" / trial_id
    checkpoints_dir(run_dir).mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir)
    payload = {"task": task, "config": to_dict(config), "run_dir": str(run_dir), **extras}
    last = checkpoints_dir(run_dir) / "last.ckpt"
    if last.is_file():  # a retried or resumed trial continues where it stopped
        payload["resume_from"] = str(last)
    trainer = TorchTrainer(
        ray_worker,
        train_loop_config=payload,
        scaling_config=scaling_config(config.trainer),
        run_config=RunConfig(
            name=f"train-{trial_id}",
            storage_path=str(Path(exp_dir) / "train"),
            callbacks=[TuneReportCallback()],
            failure_config=FailureConfig(max_failures=2),  # a lost worker restarts the group from its checkpoint
            checkpoint_config=CheckpointConfig(num_to_keep=1),
        ),
    )
    result = trainer.fit()
    if result.error is not None:
        raise result.error

