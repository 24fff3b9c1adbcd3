"""What a worker process runs: the task's loop, in this process (``workers=0``) or in a Ray Train worker.

The driver side (building the worker group, connecting to Ray) is :mod:`dist_spk.launch.ray_train`.
"""

from __future__ import annotations

from pathlib import Path

from dist_spk.config.registry import TASKS
from dist_spk.errors import DistSpkError
from dist_spk.runs.payload import WorkerPayload
from dist_spk.runs.startup import forget_launch, stamp

# payload entries naming what every run of a search shares (written by the driver's PREPARES); on an object store
# each worker fetches them to its node first
SHARED_ENTRIES = ("data_dir", "cache_file", "model_init")

def worker_loop(task: str):
    """The task's training loop (the registry's ``loop``: imported now, it pulls in torch and pyannote)."""
    if task not in TASKS:
        raise DistSpkError(f"no worker loop for task {task!r}; valid: {', '.join(TASKS)}")
    return TASKS[task].entry("loop")


def ray_worker(payload: WorkerPayload) -> None:
    """What each Ray Train worker runs."""
    from dist_spk.train.session import RaySession

    stamp(payload, "entered")
    session = RaySession(run_dir=payload["run_dir"], resume_from=payload.get("resume_from"),
                         trial_id=payload.get("trial_id"))
    if session.restarted:
        forget_launch(payload)
    payload |= {key: session.fetch(payload[key]) for key in SHARED_ENTRIES if payload.get(key)}
    worker_loop(payload["task"])(payload, session)


def run_local(payload: WorkerPayload) -> None:
    from dist_spk.train.session import LocalSession

    stamp(payload, "entered")
    resume_from = payload.get("resume_from")
    session = LocalSession(run_dir=payload["run_dir"], resume_from=Path(resume_from) if resume_from else None)
    worker_loop(payload["task"])(payload, session)
