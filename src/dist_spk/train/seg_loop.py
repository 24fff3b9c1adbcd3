"""The segmentation worker loop: one Ray Train worker (or the local process) fine-tunes PyanNet.

``payload`` is a :class:`dist_spk.runs.payload.WorkerPayload` (what Ray ships to workers): the config as a dict
(made a SegConfig again here), ``run_dir``, ``cache_file`` (pyannote's metadata cache, prepared by the driver) and
optionally ``resume_from``, ``model_init``, ``training_cache``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from dist_spk.config.tasks import SegConfig
from dist_spk.runs.payload import WorkerPayload, worker_config
from dist_spk.runs.startup import stamp


def build_task(config: SegConfig, protocol, *, cache: str | Path | None):
    """The pyannote task for ``config`` on ``protocol``."""
    from dist_spk.segmentation.augment import build_augmentation
    from dist_spk.segmentation.task import SegmentationTask

    data = config.data
    return SegmentationTask(
        protocol,
        loss=config.loss,
        duration=data.duration,
        max_speakers_per_chunk=data.max_speakers_per_chunk,
        max_speakers_per_frame=data.max_speakers_per_frame,
        batch_size=data.batch_size,
        chunks_per_epoch=data.chunks_per_epoch,
        num_workers=data.loader_workers,
        augmentation=None if config.augment.on_device else build_augmentation(config.augment),
        cache=str(cache) if cache else None,
    )


def train_segmentation(payload: WorkerPayload, session) -> None:
    """Fine-tune PyanNet as ``payload["config"]`` says; report every validation epoch through ``session``."""
    import lightning

    from dist_spk.data.protocol import load_protocol
    from dist_spk.optim import attach_optimizers
    from dist_spk.runs.checkpoints import allow_checkpoint_classes
    from dist_spk.segmentation.augment import build_augmentation
    from dist_spk.segmentation.model import FreezeSincNet, build_model
    from dist_spk.segmentation.task import SEG_OBJECTIVE
    from dist_spk.train.callbacks import ApplyOptimSettings, AugmentOnDevice, EpochReport
    from dist_spk.train.trainer import build_trainer

    stamp(payload, "imported")
    config: SegConfig = worker_config(payload)
    run_dir = session.run_dir  # node-local when the run lives on an object store
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    # pyannote's training set is an IterableDataset whose __len__ is the epoch's batch count by design
    # (each loader worker draws its own random chunks); Lightning's warning about it does not apply
    warnings.filterwarnings("ignore", message="Your `IterableDataset` has `__len__` defined")
    # pyannote passes frame targets without their rate and torch-audiomentations warns before estimating
    # it; none of the augmentations (segmentation/augment.py) changes the targets, so it is never used
    warnings.filterwarnings("ignore", message="target_rate is required by")
    lightning.seed_everything(config.trainer.seed, workers=True, verbose=False)

    protocol = load_protocol(config.data.root, config.data.protocol)
    task = build_task(config, protocol, cache=payload["cache_file"])
    model = build_model(config.model, task, local_init=payload.get("model_init"))
    if payload.get("training_cache"):  # chunks sliced from the cache instead of decoded (same samples)
        from dist_spk.data.stored_cache import local_cache
        from dist_spk.data.training_cache import open_cache
        from dist_spk.segmentation.cached_audio import CachedAudio

        model.audio = CachedAudio(open_cache(local_cache(payload["training_cache"])))
    attach_optimizers(model, config.optim, config.lr_schedule, epochs=config.trainer.epochs, monitor="loss/val")
    shown = ("loss/train", "loss/val", "DiarizationErrorRate", "DiarizationErrorRate/Marginal")
    callbacks: list = [EpochReport(session, run_dir, objective=SEG_OBJECTIVE, shown=shown, payload=payload),
                       ApplyOptimSettings(config.optim)]
    augmentation = build_augmentation(config.augment) if config.augment.on_device else None
    if augmentation is not None:
        callbacks.append(AugmentOnDevice(augmentation))
    if config.model.freeze_sincnet_epochs:
        callbacks.append(FreezeSincNet(config.model.freeze_sincnet_epochs))
    trainer = build_trainer(config.trainer, session, callbacks, run_dir=run_dir)
    allow_checkpoint_classes()
    stamp(payload, "built")
    trainer.fit(model, ckpt_path=session.latest_checkpoint(), weights_only=True)  # weights_only: no arbitrary code
