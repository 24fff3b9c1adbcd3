"""The Lightning Trainer both worker loops use."""

from __future__ import annotations

from pathlib import Path

from dist_spk.config.tasks import TrainerConfig


def build_trainer(config: TrainerConfig, session, callbacks: list, *, run_dir: Path):
    """A Trainer that validates every epoch and leaves checkpointing to the epoch callback.

    Under Ray the session supplies Ray's DDP strategy and environment; the progress bar is shown
    only in a local run (Ray interleaves workers' output). With ``config.log_every_n_steps``, the
    step log (:class:`~dist_spk.train.callbacks.StepLog`) is added to ``callbacks``.
    """
    import lightning
    from lightning.pytorch.loggers import CSVLogger

    from dist_spk.console import terminal
    from dist_spk.train.callbacks import StepLog

    if config.log_every_n_steps:
        callbacks = [*callbacks, StepLog(session, run_dir, every=config.log_every_n_steps)]

    return session.prepare(lightning.Trainer(
        max_epochs=config.epochs,
        limit_train_batches=config.limit_train_batches,
        limit_val_batches=config.limit_val_batches,
        precision=config.precision,
        gradient_clip_val=config.gradient_clip or None,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=1,
        enable_checkpointing=False,  # EpochReport writes last/best and reports them
        enable_progress_bar=not session.distributed and terminal(),  # a bar redrawn in a log is noise
        enable_model_summary=False,
        log_every_n_steps=1,
        logger=CSVLogger(run_dir, name="lightning_logs"),
        default_root_dir=run_dir,
        callbacks=callbacks,
        **session.lightning_kwargs(config),
    ))
