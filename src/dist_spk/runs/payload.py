"""What a worker is given: the one record that crosses the process boundary from the driver to a training loop.

Plain data (Ray pickles it to every worker of a group, and a Tune trial hands it to its worker group): the config
travels in its dict form and becomes its dataclass again on the worker's first line (:func:`worker_config`). Built
in one place (:func:`worker_payload`) for single runs (launch/run.py) and search trials (tune/driver.py).
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

from dist_spk.config import config_from_dict, to_dict
from dist_spk.runs import startup


class WorkerPayload(TypedDict):
    task: str  # a key of the task registry (config/registry.py)
    config: dict[str, Any]  # the resolved, validated config as a plain dict (to_dict)
    run_dir: str  # the run directory: a path, or an object-store URI (each worker then works in a node-local copy)
    resume_from: NotRequired[str]  # a checkpoint to continue from (--resume, a PBT exploit, a resumed search)
    trial_id: NotRequired[str]  # the Tune trial this run is (searches)
    # written by the driver before any worker starts (the task's ``prepare``), shared by every worker of the run
    data_dir: NotRequired[str]  # spk: the training/evaluation manifests and trial list
    cache_file: NotRequired[str]  # seg: pyannote's metadata cache of the protocol
    model_init: NotRequired[str]  # seg: the hub checkpoint, downloaded once on the driver
    training_cache: NotRequired[str]  # the decoded-audio training cache (data.cache)
    startup: NotRequired[dict[str, float]]  # start-up stamps (runs/startup.py)


def worker_payload(task: str, config: Any, run_dir: str, *, extras: dict[str, str] | None = None,
                   resume_from: str | None = None, trial_id: str | None = None) -> WorkerPayload:
    """The payload of one run, stamped as launched now (the driver calls this just before starting its workers)."""
    payload: WorkerPayload = {"task": task, "config": to_dict(config), "run_dir": run_dir, **(extras or {})}
    if resume_from is not None:
        payload["resume_from"] = resume_from
    if trial_id is not None:
        payload["trial_id"] = trial_id
    return startup.launched(payload)


def worker_config(payload: WorkerPayload) -> Any:
    """The payload's config as its task's dataclass, validated (a worker's first line)."""
    return config_from_dict(payload["task"], payload["config"])
