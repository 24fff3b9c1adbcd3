"""The one place a worker loop talks to Ray Train (``ray.train.report``, ``get_checkpoint``, ``get_context``).

A worker loop receives a session and never imports Ray itself:

- :class:`LocalSession`: plain in-process Lightning (``--workers 0``), resuming from ``last.ckpt``;
- :class:`RaySession`: inside a Ray Train worker group, with Ray's DDP strategy and environment;
  reports each epoch's metrics and checkpoint to Ray, resumes from Ray's latest checkpoint.
"""

from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from dist_spk.config.tasks import TrainerConfig
from dist_spk.cuda import require_cuda

CHECKPOINT_NAME = "checkpoint.ckpt"  # inside a Ray checkpoint folder (Ray's Lightning convention)


def _accelerator(config: TrainerConfig) -> str:
    require_cuda(config.use_gpu)  # a GPU run on a node without usable CUDA stops here, never trains on the CPU
    return "gpu" if config.use_gpu else "cpu"


class LocalSession:
    """A single process without Ray."""

    world_rank = 0
    world_size = 1
    distributed = False

    def __init__(self, *, resume_from: Path | None = None):
        self.resume_from = resume_from

    def lightning_kwargs(self, config: TrainerConfig) -> dict[str, Any]:
        return {"accelerator": _accelerator(config), "devices": 1}

    def prepare(self, trainer):
        return trainer

    def latest_checkpoint(self) -> Path | None:
        return self.resume_from

    def report(self, metrics: dict[str, float], checkpoint: Path | None) -> None:
        """Nothing to do: the epoch callback already wrote metrics.jsonl and the checkpoints."""

    def console(self, line: str) -> None:
        print(line, flush=True)


class RaySession:
    """A Ray Train worker (one rank of a DDP worker group)."""

    distributed = True

    def __init__(self, *, resume_from: Path | None = None) -> None:
        import ray.train

        self.resume_from = resume_from
        self._train = ray.train
        context = ray.train.get_context()
        self.world_rank = context.get_world_rank()
        self.world_size = context.get_world_size()
        # Ray Train restarted this worker group after a failure (a new run has no checkpoint yet)
        self.restarted = ray.train.get_checkpoint() is not None
        self._scratch = Path(tempfile.mkdtemp(prefix="dist_spk-"))
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
        print(line, file=sys.__stdout__ or sys.stdout, flush=True)

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
        """Ray's latest reported checkpoint (after a worker-group restart or a resumed trial), as a local file.

        Without one, the run directory's ``last.ckpt`` when the run was resumed (``--resume``).
        """
        checkpoint = self._train.get_checkpoint()
        if checkpoint is None:
            return self.resume_from
        local = self._scratch / "restored"
        shutil.rmtree(local, ignore_errors=True)
        checkpoint.to_directory(str(local))
        return local / CHECKPOINT_NAME

    def report(self, metrics: dict[str, float], checkpoint: Path | None) -> None:
        """Report on every rank (it is a barrier); rank 0 attaches the epoch's checkpoint."""
        if checkpoint is None or self.world_rank != 0:
            self._train.report(metrics)
            return
        folder = self._scratch / f"epoch-{int(metrics.get('epoch', 0)):04d}"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(checkpoint, folder / CHECKPOINT_NAME)
        try:
            self._train.report(metrics, checkpoint=self._train.Checkpoint.from_directory(str(folder)))
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # Ray has copied it to the run's storage
