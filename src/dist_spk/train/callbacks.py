"""Lightning callbacks shared by the worker loops."""

from __future__ import annotations

import time
from pathlib import Path

import lightning

from dist_spk.config.tasks import OptimConfig
from dist_spk.data.training_cache import to_float
from dist_spk.runs import startup
from dist_spk.runs.run_dir import append_metrics, append_step, keep_epochs_before, read_metrics
from dist_spk.train.worker_metrics import WorkerMonitor


class EpochReport(lightning.Callback):
    """After each epoch's validation: checkpoint, metrics.jsonl, one console line, and the session report.

    Lightning runs validation before ``on_train_epoch_end``, so the callback metrics hold both the
    training and the validation values of the epoch. Every rank takes part (saving and Ray's report
    are collective); rank 0 writes the files.

    Parameters
    ----------
    session
        :class:`~dist_spk.train.session.LocalSession` or ``RaySession``.
    run_dir
        The run directory (see :mod:`dist_spk.runs.run_dir`).
    objective
        The metric that picks ``best.ckpt`` (lower is better).
    shown
        Metric names printed on the console line.
    payload
        The worker's payload: its start-up stamps (:mod:`dist_spk.runs.startup`) get the first
        training step, and epoch 0's row the ``startup_seconds``.
    """

    def __init__(self, session, run_dir: Path, *, objective: str, shown: tuple[str, ...],
                 payload: dict | None = None):
        self.session = session
        self.payload = payload
        self._startup_reported = False
        self.run_dir = Path(run_dir)
        self.objective = objective
        self.shown = shown
        self.best: float | None = None
        self._started = time.perf_counter()

    def on_train_start(self, trainer, pl_module) -> None:
        # after a resume, trainer.current_epoch is the first epoch still to train
        if self.session.world_rank == 0:
            keep_epochs_before(self.run_dir, trainer.current_epoch)
            done = [row[self.objective] for row in read_metrics(self.run_dir) if row.get(self.objective) is not None]
            self.best = min(done) if done else None
        self._started = time.perf_counter()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.payload is not None and not self._startup_reported:
            startup.stamp(self.payload, "first_step")

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items() if value.numel() == 1}
        if self.payload is not None and not self._startup_reported:
            self._startup_reported = True
            seconds = startup.breakdown(self.payload.get(startup.KEY, {}))
            if "total" in seconds:
                metrics["startup_seconds"] = seconds["total"]
                if self.session.world_rank == 0:
                    self.session.console(startup.describe(seconds))
                    startup.save(self.run_dir, seconds)
        metrics["epoch"] = trainer.current_epoch
        metrics["step"] = trainer.global_step
        metrics["lr"] = float(trainer.optimizers[0].param_groups[0]["lr"])
        metrics["epoch_seconds"] = round(time.perf_counter() - self._started, 3)
        # the difference of consecutive rows' wall_time is an epoch's whole cost, which epoch_seconds
        # leaves out: training, validation, and the previous epoch's checkpoint and report
        metrics["wall_time"] = round(time.time(), 3)
        # written once: the session makes it last.ckpt (best.ckpt a link), or hands it to Ray to upload
        checkpoint = self.session.checkpoint_path(trainer.current_epoch)
        trainer.save_checkpoint(checkpoint, weights_only=False)  # collective under DDP; rank 0 writes
        best = False
        if self.session.world_rank == 0:
            value = metrics.get(self.objective)
            best = value is not None and (self.best is None or value < self.best)
            self.best = value if best else self.best
            append_metrics(self.run_dir, metrics)
            shown = "  ".join(f"{name}={metrics[name]:.4f}" for name in self.shown if name in metrics)
            self.session.console(f"[epoch {trainer.current_epoch}] {shown}  ({metrics['epoch_seconds']:.1f} s)")
        self.session.report(metrics, checkpoint if self.session.world_rank == 0 else None, best=best)
        self._started = time.perf_counter()


class StopWhenAsked(lightning.Callback):
    """Raise ``stop`` (an exception class) after the training step during which ``should_stop()`` became true."""

    def __init__(self, should_stop, stop: type[BaseException]):
        self.should_stop, self.stop = should_stop, stop

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.should_stop():
            raise self.stop()

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.should_stop():
            raise self.stop()


class StepLog(lightning.Callback):
    """Every ``every`` optimizer steps, rank 0 appends ``step``, ``epoch`` (epochs elapsed, fractional),
    ``train_step/loss`` (its own batch's loss, not averaged over ranks: no collective in the hot loop) and
    ``train_step/lr`` to ``RUN/steps.jsonl``, with the worker's own system metrics
    (:mod:`dist_spk.train.worker_metrics`); the W&B side streams the file (:mod:`dist_spk.tune.wandb_logging`).
    """

    def __init__(self, session, run_dir: Path, *, every: int):
        self.session, self.run_dir, self.every = session, Path(run_dir), every
        self._logged = -1
        self.monitor: WorkerMonitor | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        if self.session.world_rank == 0:
            self.monitor = WorkerMonitor(trainer.strategy.root_device)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step  # optimizer steps taken, this batch's included
        if self.session.world_rank != 0 or step % self.every or step == self._logged:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:  # a batch the loop skipped
            return
        self._logged = step
        elapsed = trainer.current_epoch + (batch_idx + 1) / max(trainer.num_training_batches, 1)
        append_step(self.run_dir, {"step": step, "epoch": round(elapsed, 4), "train_step/loss": float(loss),
                                   "train_step/lr": float(trainer.optimizers[0].param_groups[0]["lr"]),
                                   **(self.monitor.sample() if self.monitor else {})})


class ApplyOptimSettings(lightning.Callback):
    """On a resume, the configured ``optim.lr`` and ``optim.weight_decay`` win over the checkpoint's.

    Lightning restores the optimizer's param groups (their lr included) and the schedulers' base lrs
    from the checkpoint, so a trial that PBT perturbed, or a run resumed with another
    ``--set optim.lr``, would silently keep the old values. Every lr is rescaled by new/old base lr:
    the schedule keeps its shape and position. Without a resume this changes nothing.
    """

    def __init__(self, optim: OptimConfig):
        self.lr = optim.lr
        self.weight_decay = optim.weight_decay

    def on_train_start(self, trainer, pl_module) -> None:
        ratio = 1.0
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                ratio = self.lr / group.get("initial_lr", group["lr"])
                group["lr"] *= ratio
                group["initial_lr"] = self.lr
                group["weight_decay"] = self.weight_decay
        for config in trainer.lr_scheduler_configs:
            # SequentialLR (warm-up, then the schedule) keeps its stages in _schedulers
            for scheduler in (config.scheduler, *getattr(config.scheduler, "_schedulers", ())):
                if hasattr(scheduler, "base_lrs"):
                    scheduler.base_lrs = [lr * ratio for lr in scheduler.base_lrs]


class AugmentOnDevice(lightning.Callback):
    """Waveform augmentation of each training batch where the model runs (``augment.on_device``).

    pyannote augments in its collate function, so in the loader processes on the CPU, where it dominates the feed
    (bench/data_feed.py). torch-audiomentations transforms whole batches on any device, so here the loader only
    slices and frames, and the batch is augmented after Lightning moved it to the GPU. Targets are unchanged: none of
    the transforms (segmentation/augment.py) moves audio in time.
    """

    def __init__(self, augmentation):
        self.augmentation = augmentation

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.augmentation.to(batch["X"].device)
        samples = to_float(batch["X"])  # int16 when read from a training cache
        batch["X"] = self.augmentation(samples=samples, sample_rate=pl_module.hparams.sample_rate).samples
