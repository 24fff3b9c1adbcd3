"""The speaker-encoder worker loop: one Ray Train worker (or the local process) trains the encoder.

``payload``: ``config`` (SpkConfig as a dict), ``run_dir``, and ``data_dir``: the folder the driver
filled with ``train.jsonl``, ``eval.jsonl`` and ``trials.txt`` (shared by every trial of a search).
"""

from __future__ import annotations

from pathlib import Path

from dist_spk.config import to_dict
from dist_spk.runs.payload import WorkerPayload, worker_config
from dist_spk.runs.startup import stamp


def train_speaker(payload: WorkerPayload, session) -> None:
    """Train the speaker encoder as ``payload["config"]`` says; report every epoch through ``session``."""
    import lightning
    from torch.utils.data import DataLoader, RandomSampler

    from dist_spk.data.trials import parse_trials
    from dist_spk.optim import attach_optimizers
    from dist_spk.speaker.data import BalancedSampler, EvalUtterances, TrainCrops, collated, pad_batch, read_manifest
    from dist_spk.speaker.module import SPK_OBJECTIVE, SpeakerModule
    from dist_spk.train.callbacks import ApplyOptimSettings, EpochReport
    from dist_spk.train.trainer import build_trainer

    stamp(payload, "imported")
    config = worker_config(payload)
    run_dir = session.run_dir  # node-local when the run lives on an object store
    lightning.seed_everything(config.trainer.seed, workers=True, verbose=False)
    folder = Path(payload["data_dir"])
    train = read_manifest(folder / "train.jsonl")
    evaluation = read_manifest(folder / "eval.jsonl")
    trials, _ = parse_trials(folder / "trials.txt")
    speakers = sorted({u.speaker for u in train})

    cache = None
    if payload.get("training_cache"):  # crops sliced from the cache instead of decoded (same samples)
        from dist_spk.data.stored_cache import local_cache
        from dist_spk.data.training_cache import open_cache

        cache = open_cache(local_cache(payload["training_cache"]))
    crops = TrainCrops(train, speakers, config.data, seed=config.trainer.seed + session.world_rank, cache=cache)
    size = config.data.crops_per_epoch
    if config.data.balanced_sampling:
        sampler = BalancedSampler(crops.labels(), seed=config.trainer.seed, size=size)
    else:  # with crops_per_epoch, draws with replacement; else one shuffled pass
        sampler = RandomSampler(crops, replacement=True, num_samples=size) if size else None
    workers = config.data.loader_workers
    train_loader = DataLoader(crops, batch_size=config.data.batch_size, sampler=sampler, shuffle=sampler is None,
                              collate_fn=collated,  # TrainCrops makes whole batches (__getitems__)
                              num_workers=workers, drop_last=True, persistent_workers=workers > 0)
    eval_loader = DataLoader(EvalUtterances(evaluation, cache=cache), batch_size=max(1, config.data.batch_size // 8),
                             collate_fn=pad_batch, num_workers=workers)

    module = SpeakerModule(to_dict(config), crops.num_classes)
    module.set_evaluation(evaluation, trials)
    attach_optimizers(module, config.optim, config.lr_schedule, epochs=config.trainer.epochs, monitor=SPK_OBJECTIVE)
    report = EpochReport(session, run_dir, objective=SPK_OBJECTIVE, shown=("loss", "accuracy", "eer", "min_dcf", "ari"),
                         payload=payload)
    trainer = build_trainer(config.trainer, session, [report, ApplyOptimSettings(config.optim)], run_dir=run_dir)
    stamp(payload, "built")
    trainer.fit(module, train_loader, eval_loader, ckpt_path=session.latest_checkpoint(), weights_only=True)
