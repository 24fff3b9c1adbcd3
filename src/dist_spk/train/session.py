"""The one place a worker loop talks to Ray Train (``ray.train.report``, ``get_checkpoint``, ``get_context``).

A worker loop receives a session and never imports Ray itself:

- :class:`LocalSession`: plain in-process Lightning (``--workers 0``), resuming from ``last.ckpt``;
  each epoch's checkpoint is written once, as ``last.ckpt``; ``best.ckpt`` is a hard link to it;
- :class:`TrialSession`: a 1-worker trial of the local test mode, in its Tune trial's own process;
- :class:`RaySession`: inside a Ray Train worker group, with Ray's DDP strategy and environment;
  reports each epoch's metrics and checkpoint to Ray, resumes from Ray's latest checkpoint. The checkpoint is
  written to node-local scratch and Ray uploads it to the run's storage: that upload is its one durable copy
  (``last``/``best`` in the run directory point at it, :func:`dist_spk.runs.run_dir.point_checkpoint`).

Each session has the run directory the loop writes (``session.run_dir``): the run's location itself, or, when that
is on an object store (``s3://...``), a node-local scratch copy whose small files rank 0 publishes after every epoch.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from dist_spk.config.tasks import TrainerConfig
from dist_spk.cuda import require_cuda
from dist_spk.runs import startup, storage
from dist_spk.runs.run_dir import (
    METRICS_FILE,
    STEPS_FILE,
    CheckpointPointers,
    best_checkpoint,
    last_checkpoint,
    read_pointer,
)

CHECKPOINT_NAME = "checkpoint.ckpt"  # inside a Ray checkpoint folder (Ray's Lightning convention)


def _accelerator(config: TrainerConfig) -> str:
    require_cuda(config.use_gpu)  # a GPU run on a node without usable CUDA stops here, never trains on the CPU
    return "gpu" if config.use_gpu else "cpu"


class LocalSession:
    """A single process without Ray."""

    world_rank = 0
    world_size = 1
    distributed = False

    def __init__(self, *, run_dir: Path, resume_from: Path | None = None):
        if storage.is_remote(run_dir):
            raise storage_error(run_dir)
        self.run_dir = Path(run_dir)
        self.resume_from = resume_from

    def lightning_kwargs(self, config: TrainerConfig) -> dict[str, Any]:
        return {"accelerator": _accelerator(config), "devices": 1}

    def prepare(self, trainer):
        return trainer

    def latest_checkpoint(self) -> Path | None:
        return self.resume_from

    def checkpoint_path(self, epoch: int) -> Path:
        """Where the epoch's checkpoint is written: beside ``last.ckpt``, which it replaces once complete."""
        return last_checkpoint(self.run_dir).with_name(".last.ckpt.partial")

    def report(self, metrics: dict[str, float], checkpoint: Path | None, *, best: bool = False) -> None:
        """The written checkpoint becomes ``last.ckpt`` (a rename: a crash never leaves half of one), and
        ``best.ckpt`` when ``best`` (a hard link to the same file: no second copy)."""
        if checkpoint is None:
            return
        last = last_checkpoint(self.run_dir)
        checkpoint.replace(last)
        if best:
            link = best_checkpoint(self.run_dir).with_name(".best.ckpt.partial")
            link.unlink(missing_ok=True)
            try:
                os.link(last, link)
            except OSError:  # a file system without hard links
                shutil.copyfile(last, link)
            link.replace(best_checkpoint(self.run_dir))

    def console(self, line: str) -> None:
        print(line, flush=True)


class TrialStopped(Exception):  # noqa: N818 - a stop, not an error
    """Tune stopped the trial (ASHA, the search's end) while it trained in its own process (:class:`TrialSession`)."""


class TrialSession(LocalSession):
    """A 1-worker trial of the local test mode, trained in its Tune trial's own process: no Ray Train worker group
    to start (issue 22: most of a trial's start-up), and Tune reuses the process, imports warm, for the next trial.

    Checkpoints are laid out as a Ray Train run lays them out, so everything downstream is the same: each epoch's
    under ``checkpoints_root`` (``EXP/train/<run>/checkpoint_<epoch>/checkpoint.ckpt``), the run's ``last`` and
    ``best`` pointing at them (:func:`~dist_spk.runs.run_dir.point_checkpoint`; a tie moves ``best``), the others
    deleted (Ray Train's ``num_to_keep=1`` by objective, the latest kept), and each handed to ``report_to``
    (the trial driver's report to Tune). ``should_stop`` is polled after every training step: Tune asks a trial to
    stop by an event, and a trial that ends within Tune's two seconds leaves its process to the next trial.
    """

    def __init__(self, *, run_dir: Path, resume_from: str | None, trial_id: str, checkpoints_root: Path,
                 objective: str, report_to, should_stop) -> None:
        super().__init__(run_dir=run_dir, resume_from=Path(resume_from) if resume_from else None)
        self.tag = f"[trial {trial_id}] "
        self.root, self.objective = Path(checkpoints_root), objective
        self.report_to, self.should_stop = report_to, should_stop
        self.pointers = CheckpointPointers(str(self.run_dir), objective)

    def console(self, line: str) -> None:
        print(self.tag + line, flush=True)

    def prepare(self, trainer):
        from dist_spk.train.callbacks import StopWhenAsked

        trainer.callbacks.append(StopWhenAsked(self.should_stop, TrialStopped))
        return trainer

    def checkpoint_path(self, epoch: int) -> Path:
        folder = self.root / f"checkpoint_{epoch:06d}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / CHECKPOINT_NAME

    def report(self, metrics: dict[str, float], checkpoint: Path | None, *, best: bool = False) -> None:
        if checkpoint is None:
            self.report_to(metrics, None)
            return
        run = str(self.run_dir)
        self.pointers.point(str(checkpoint), metrics)
        kept = {Path(pointer["location"]).resolve().parent for pointer in (read_pointer(run, "last"),
                                                                           read_pointer(run, "best")) if pointer}
        for folder in self.root.glob("checkpoint_*"):
            if folder.resolve() not in kept:
                shutil.rmtree(folder, ignore_errors=True)
        self.report_to(metrics, checkpoint.parent)


class RaySession:
    """A Ray Train worker (one rank of a DDP worker group)."""

    distributed = True

    def __init__(self, *, run_dir: str | Path, resume_from: str | None = None, trial_id: str | None = None) -> None:
        import ray.train

        self._train = ray.train
        context = ray.train.get_context()
        self.world_rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        # Ray Train restarted this worker group after a failure (a new run has no checkpoint yet)
        self.restarted = ray.train.get_checkpoint() is not None
        # a search's trial: every console line names it (the driver's logs file it by trial, launch/worker_logs.py)
        self.tag = f"[trial {trial_id}] " if trial_id else ""
        if self.tag:
            self.console(f"rank {self.world_rank} of {self.world_size}")
        self._scratch = Path(tempfile.mkdtemp(prefix="dist_spk-"))
        self.resume_from = resume_from
        self.run_location = storage.normalize(run_dir)
        self.run_dir = Path(self.run_location)
        if storage.is_remote(run_dir):  # node-local, with what earlier starts of the run published
            self.run_dir = self._scratch / "run"
            if self.world_rank == 0:
                storage.download(self.run_location, self.run_dir, skip=storage.HEAVY)
        # Lightning's package logger has a console handler and also propagates to the root logger,
        # which Ray Train gives its own: every Lightning message would be printed twice
        logging.getLogger("lightning").propagate = False

    def console(self, line: str) -> None:
        """One line on the worker's console, once.

        Ray Train patches ``print`` in its workers to log each line to the root logger (which Ray
        prints) and, since sys.stdout is wrapped there, to print it as well: every line twice. A
        ``file=`` other than sys.stdout bypasses the patch; the worker's real stdout still reaches
        the driver's console and Ray's worker log.
        """
        print(self.tag + line, file=sys.__stdout__ or sys.stdout, flush=True)

    def lightning_kwargs(self, config: TrainerConfig) -> dict[str, Any]:
        from ray.train.lightning import RayDDPStrategy, RayLightningEnvironment

        return {
            "accelerator": _accelerator(config),
            "devices": "auto",
            "strategy": RayDDPStrategy(find_unused_parameters=False),
            "plugins": [RayLightningEnvironment()],
        }

    def prepare(self, trainer):
        from ray.train.lightning import prepare_trainer

        return prepare_trainer(trainer)

    def latest_checkpoint(self) -> Path | None:
        """Ray's latest reported checkpoint (after a worker-group restart), as a local file.

        Without one, ``resume_from`` (a resumed trial, a PBT donor's checkpoint, ``--resume``): a path, or a
        location on the experiment's store, fetched into scratch.
        """
        checkpoint = self._train.get_checkpoint()
        local = self._scratch / "restored"
        shutil.rmtree(local, ignore_errors=True)
        if checkpoint is not None:
            checkpoint.to_directory(str(local))
            return local / CHECKPOINT_NAME
        if self.resume_from is None or not storage.is_remote(self.resume_from):
            return Path(self.resume_from) if self.resume_from else None
        local.mkdir(parents=True)
        (local / CHECKPOINT_NAME).write_bytes(storage.read_bytes(self.resume_from))
        return local / CHECKPOINT_NAME

    def fetch(self, location: str) -> str:
        """A path for ``location``: itself when local, else a node-local copy (a file, or a folder's files)."""
        if not storage.is_remote(location):
            return location
        local = self._scratch / "shared" / Path(location.split("?")[0]).name
        if storage.is_file(location):
            local.parent.mkdir(parents=True, exist_ok=True)
            local.write_bytes(storage.read_bytes(location))
        else:
            storage.download(location, local)
        return str(local)

    def checkpoint_path(self, epoch: int) -> Path:
        """Where the epoch's checkpoint is written: a scratch folder that Ray uploads and this rank deletes."""
        return self._scratch / f"epoch-{epoch:04d}" / CHECKPOINT_NAME

    def publish(self) -> None:
        """Rank 0's run files (metrics, step log, start-up) to the run's store, when it is not this node's disk."""
        if self.world_rank != 0 or self.run_location == str(self.run_dir):
            return
        for name in (METRICS_FILE, STEPS_FILE, startup.FILE):
            if (self.run_dir / name).is_file():
                storage.write_bytes(storage.join(self.run_location, name), (self.run_dir / name).read_bytes())

    def report(self, metrics: dict[str, float], checkpoint: Path | None, *, best: bool = False) -> None:
        """Report on every rank (it is a barrier); rank 0 attaches the epoch's checkpoint, which Ray uploads to
        the run's storage (``best`` is decided again where the upload is known, from the metrics)."""
        self.publish()
        if checkpoint is None or self.world_rank != 0:
            self._train.report(metrics)
            return
        try:
            self._train.report(metrics, checkpoint=self._train.Checkpoint.from_directory(str(checkpoint.parent)))
        finally:
            shutil.rmtree(checkpoint.parent, ignore_errors=True)  # Ray has uploaded it to the run's storage


def storage_error(location: str | Path):
    from dist_spk.errors import DistSpkError

    return DistSpkError(f"{location}: a run on an object store needs Ray Train to upload its checkpoints; "
                        "use --workers 1 or more (or a local --out)")
