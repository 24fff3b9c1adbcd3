"""Named presets for each task.

``local`` finishes on 2 CPU cores in minutes (tests, ``make demo``, the local test mode);
``cluster`` holds realistic settings for GPU nodes. Presets only override defaults: a preset is the
dataclass defaults plus the changes written here.
"""

from __future__ import annotations

from typing import Any

from dist_spk.config.tasks import SearchConfig, SegConfig, SpkConfig, TrainerConfig


def _cpu_trainer(**changes: Any) -> TrainerConfig:
    base = dict(epochs=4, workers=1, use_gpu=False, cpus_per_worker=1, precision="32", log_every_n_steps=10)
    return TrainerConfig(**(base | changes))


def _local_search() -> SearchConfig:
    """Six trials, ASHA halving the field from the first epoch: a real search in minutes on 2 cores."""
    return SearchConfig(num_samples=6, grace_period=1, reduction_factor=2)


def seg_local() -> SegConfig:
    """A tiny PyanNet on 2 s chunks, 640 chunks per epoch (40 steps of 16): minutes on 2 CPU cores."""
    config = SegConfig()
    # 2 s chunks: a tiny model trained for minutes learns voice activity long before it learns to tell two
    # voices apart inside a chunk; shorter chunks hold one voice more often and leave that to the pipeline's
    # clustering. On the demo corpus (same trained encoder, pipeline tuned on dev): test DER 28 % with 2 s
    # chunks vs 49 % with 5 s, at 2/3 of the compute per epoch.
    config.data.duration = 2.0
    config.data.batch_size = 16
    # the demo corpus holds ~6 min of training audio: pyannote's epoch (duration / chunk) would be 11 steps
    config.data.chunks_per_epoch = 640
    config.data.loader_workers = 0
    config.model.lstm_hidden_size = 64
    config.model.lstm_num_layers = 2
    config.model.linear_hidden_size = 64
    config.trainer = _cpu_trainer(epochs=4, limit_val_batches=10)
    config.search = _local_search()
    # ASHA's first rung after 2 epochs: after one epoch (40 steps) every demo trial's argmax labelled every frame
    # as two speakers (DER 1.12 for all six, whatever the loss), so a rung at 1 stopped trials at random
    config.search.grace_period = 2
    return config


def seg_cluster() -> SegConfig:
    """The seed team's best variant: NAdam + cosine annealing, batch 64, bce+dice, augmentation."""
    config = SegConfig()
    config.optim.name = "nadam"
    config.optim.lr = 1e-3
    config.lr_schedule.name = "cosine"
    config.loss.name = "bce+dice"
    config.augment.probability = 0.5
    config.model.init = "pyannote/segmentation-3.0"
    config.trainer = TrainerConfig(epochs=30, workers=2, use_gpu=True, cpus_per_worker=4)
    return config


def spk_local() -> SpkConfig:
    """A ~0.3 M-parameter Conformer on 1.5 s crops, 640 per epoch, noise and reverb: minutes on 2 CPU cores."""
    config = SpkConfig()
    config.data.crop_seconds = 1.5
    config.data.batch_size = 32
    # 20 steps of 32 per epoch, whatever the dataset's size (the demo's 192 utterances would give 6)
    config.data.crops_per_epoch = 640
    # users' recordings are noisy: generated noise at 5-20 dB (or data.noise_dir's) and generated reverb.
    # Measured on unseen noisy voices (bench/spk_augmentation.py, bench/heldout.py's corpus), same 12 x 640 crops:
    # EER 0.053 with (applied on the device), 0.113 without
    config.data.noise_probability = 0.5
    config.data.reverb_probability = 0.3
    config.data.loader_workers = 0
    config.data.min_segment_seconds = 1.0
    config.frontend.n_mels = 40
    config.model.emb_size = 64
    config.model.d_model = 64
    config.model.num_blocks = 2
    config.model.num_heads = 2
    config.model.ffn_dim = 128
    config.head.margin_warmup_epochs = 2
    config.optim.lr = 3e-3
    config.trainer = _cpu_trainer(epochs=10)
    config.search = _local_search()
    config.search.grace_period = config.head.margin_warmup_epochs + 1  # ASHA ranks trials once the margin is in place
    return config


def spk_cluster() -> SpkConfig:
    """An MFA-Conformer of 17 M parameters (6 blocks of 256), AAM margin 0.2, SpecAugment, 40 epochs."""
    config = SpkConfig()
    config.data.crop_seconds = 2.0
    config.data.speed_perturb = [0.9, 1.1]
    # noise (generated, or data.noise_dir's: e.g. MUSAN) and reverb, as VoxCeleb recipes train; on the GPU
    # (data.augment_on_device), so it costs the loaders nothing. bench/spk_augmentation.py: on unseen noisy voices
    # the local preset's EER with it is 0.47x the EER without
    config.data.noise_probability = 0.5
    config.data.reverb_probability = 0.3
    config.frontend.specaugment = True
    config.model.emb_size = 192
    config.model.d_model = 256
    config.model.num_blocks = 6
    config.model.ffn_dim = 2048
    config.head.margin = 0.2
    config.head.scale = 32.0
    config.head.margin_warmup_epochs = 10
    config.optim.name = "adamw"
    config.optim.weight_decay = 1e-4
    config.lr_schedule.name = "cosine"
    config.lr_schedule.warmup_epochs = 3
    config.trainer = TrainerConfig(epochs=40, workers=2, use_gpu=True, cpus_per_worker=4)
    config.search.grace_period = config.head.margin_warmup_epochs + 1  # as in spk_local: 11, rungs at 11 and 33
    return config
