"""Typed configs of the two trainable tasks.

Each section is a dataclass whose defaults are sensible for a GPU; the ``local`` preset shrinks
them for a 2-core CPU (see :mod:`dist_spk.config.presets`). Sections report value problems through
``problems()``; :func:`dist_spk.config.typed.iter_problems` collects them with their dotted keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

Problems = Iterator[tuple[str, str]]

OptimizerName = Literal["adam", "adamw", "radam", "nadam", "sgd"]
SchedulerName = Literal["none", "cosine", "cosine_restarts", "plateau"]
SegLossName = Literal["powerset_ce", "bce", "bce+dice", "bce+tversky"]


def _positive(section: object, *names: str) -> Problems:
    for name in names:
        if getattr(section, name) <= 0:
            yield name, f"must be > 0, got {getattr(section, name)}"


def _non_negative(section: object, *names: str) -> Problems:
    for name in names:
        if getattr(section, name) < 0:
            yield name, f"must be >= 0, got {getattr(section, name)}"


def _probability(section: object, *names: str) -> Problems:
    for name in names:
        if not 0.0 <= getattr(section, name) <= 1.0:
            yield name, f"must be a probability in [0, 1], got {getattr(section, name)}"


# ---------------------------------------------------------------------------------------------
# Sections shared by both tasks
# ---------------------------------------------------------------------------------------------


@dataclass
class OptimConfig:
    """Optimizer; ``lookahead`` wraps any of them (k steps forward, 1 back with ``alpha``)."""

    name: OptimizerName = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # sgd only
    lookahead: bool = False
    lookahead_k: int = 5
    lookahead_alpha: float = 0.5

    def problems(self) -> Problems:
        yield from _positive(self, "lr", "lookahead_k")
        yield from _non_negative(self, "weight_decay", "momentum")
        yield from _probability(self, "lookahead_alpha")


@dataclass
class LrScheduleConfig:
    """Learning-rate schedule, stepped once per epoch, after ``warmup_epochs`` of linear warm-up."""

    name: SchedulerName = "none"
    warmup_epochs: int = 0
    min_lr: float = 0.0  # cosine, cosine_restarts
    restart_epochs: int = 10  # cosine_restarts: length of the first cycle
    plateau_patience: int = 2  # plateau: epochs without improvement of the monitored metric
    plateau_factor: float = 0.5  # plateau: lr multiplier

    def problems(self) -> Problems:
        yield from _non_negative(self, "warmup_epochs", "min_lr", "plateau_patience")
        yield from _positive(self, "restart_epochs")
        if not 0.0 < self.plateau_factor < 1.0:
            yield "plateau_factor", f"must be in (0, 1), got {self.plateau_factor}"
        if self.name == "plateau" and self.warmup_epochs:
            yield "warmup_epochs", "warm-up cannot precede reduce-on-plateau; set it to 0"


@dataclass
class TrainerConfig:
    """How long and where one run trains.

    ``workers`` is the size of the Ray Train worker group (DDP); 0 trains in-process with plain
    Lightning, without Ray.
    """

    epochs: int = 20
    limit_train_batches: int | None = None  # batches per epoch; None = the whole epoch
    limit_val_batches: int | None = None
    workers: int = 1
    use_gpu: bool = True
    cpus_per_worker: int = 4
    gpus_per_worker: float = 1.0  # with use_gpu; a fraction (1-worker trials only) packs several trials on one GPU
    # extra Ray resources each worker needs, e.g. {"accelerator_type:A100": 1} or a custom node resource: pins
    # workers to node types (--set 'trainer.worker_resources={"A100": 1}')
    worker_resources: dict[str, float] = field(default_factory=dict)
    precision: Literal["32", "16-mixed", "bf16-mixed"] = "16-mixed"
    gradient_clip: float = 0.0  # 0 = no clipping
    seed: int = 0
    # every N optimizer steps rank 0 appends its training loss and lr to RUN/steps.jsonl, which W&B streams:
    # an hours-long epoch shows its loss curve as it goes. 0 = epochs only
    log_every_n_steps: int = 50

    def problems(self) -> Problems:
        yield from _positive(self, "epochs", "cpus_per_worker", "gpus_per_worker")
        yield from _non_negative(self, "workers", "gradient_clip", "log_every_n_steps")
        for name in ("limit_train_batches", "limit_val_batches"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                yield name, f"must be > 0 or none, got {value}"
        if not self.use_gpu and self.precision == "16-mixed":
            yield "precision", "16-mixed needs a GPU; use 32 or bf16-mixed on the CPU"
        if self.use_gpu and self.gpus_per_worker < 1 and self.workers > 1:
            # NCCL refuses two ranks of one process group on one GPU ("Duplicate GPU detected")
            yield "gpus_per_worker", (f"a fraction ({self.gpus_per_worker:g}) is only allowed for 1-worker trials: "
                                      f"with {self.workers} workers, two DDP ranks could share one GPU, which NCCL "
                                      "refuses; use gpus_per_worker >= 1 or workers=1")
        if self.use_gpu and self.gpus_per_worker > 1 and self.gpus_per_worker != int(self.gpus_per_worker):
            yield "gpus_per_worker", f"above 1 it must be a whole number of GPUs, got {self.gpus_per_worker:g}"
        for name, amount in self.worker_resources.items():
            if name in ("CPU", "GPU", "memory", "object_store_memory"):
                yield "worker_resources", (f"{name!r} is set by trainer.cpus_per_worker / gpus_per_worker, not "
                                           "here; worker_resources holds custom resources such as "
                                           "'accelerator_type:A100'")
            elif amount <= 0:
                yield "worker_resources", f"{name!r} must be > 0, got {amount:g}"


@dataclass
class SearchConfig:
    """Ray Tune search settings (``dist-spk tune``); the search space itself is a YAML file."""

    num_samples: int = 32  # trials drawn from a space that samples (a space that samples nothing runs each combination)
    # a space that samples nothing (a grid, a variant list): runs of each combination, repeat k with trainer.seed + k
    repeats: int = 1
    trial_scheduler: Literal["asha", "fifo", "pbt"] = "asha"  # was search.scheduler
    sampler: Literal["random", "optuna"] = "random"  # was search.search
    grace_period: int = 2  # ASHA: epochs every trial runs before it may be stopped
    reduction_factor: int = 3  # ASHA: one trial in reduction_factor goes on at each rung
    perturbation_interval: int = 2  # PBT: epochs between exploit/explore steps
    max_concurrent: int = 0  # 0 = as many as the cluster's resources fit
    max_trial_failures: int = 1  # a failed trial is retried this many times
    wandb_project: str = "dist-spk"
    wandb_upload_best: bool = True  # the search's experiment run uploads EXP/best (online; offline: a reference)
    # in the local test mode, a 1-worker trial (ASHA or FIFO, experiment on a local disk) trains in its Tune trial's
    # own reused process instead of a Ray Train worker group: seconds less start-up per trial (tune/driver.py)
    in_process_trials: bool = True

    def problems(self) -> Problems:
        yield from _positive(self, "num_samples", "repeats", "grace_period", "perturbation_interval")
        yield from _non_negative(self, "max_concurrent", "max_trial_failures")
        if self.reduction_factor < 2:
            yield "reduction_factor", f"must be >= 2, got {self.reduction_factor}"


# ---------------------------------------------------------------------------------------------
# Segmentation fine-tuning (pyannote.audio PyanNet)
# ---------------------------------------------------------------------------------------------


@dataclass
class SegDataConfig:
    """Dataset and chunking of the pyannote ``SpeakerDiarization`` task."""

    root: str = ""  # a seed-layout folder, or a pyannote.database YAML file
    protocol: str = ""  # with a YAML file: e.g. MyDatabase.SpeakerDiarization.default
    duration: float = 10.0  # chunk length in seconds
    max_speakers_per_chunk: int = 3
    max_speakers_per_frame: int = 2
    batch_size: int = 64
    # random training chunks per epoch; 0 = pyannote's default, the training files' annotated duration over the
    # chunk duration (a small dataset then gives epochs of a few steps, too short to validate after)
    chunks_per_epoch: int = 0
    loader_workers: int = 4  # DataLoader processes per training worker
    cache_dir: str = ""  # pyannote metadata cache; on a cluster, shared storage. "" = <root>/.dist_spk_cache
    cache: str = ""  # a training cache (dist-spk data prepare): chunks read from it, not decoded; built if missing

    def problems(self) -> Problems:
        yield from _positive(self, "duration", "max_speakers_per_chunk", "max_speakers_per_frame", "batch_size")
        yield from _non_negative(self, "loader_workers", "chunks_per_epoch")
        if self.max_speakers_per_frame > self.max_speakers_per_chunk:
            yield "max_speakers_per_frame", "cannot exceed max_speakers_per_chunk"


@dataclass
class SegModelConfig:
    """PyanNet (segmentation-3.0 architecture) and where its weights come from."""

    init: str = "random"  # "random", a local checkpoint path, or a hub id (e.g. pyannote/segmentation-3.0)
    hub_token_env: str = "HF_TOKEN"  # environment variable holding the hub token; never written to disk
    freeze_sincnet_epochs: int = 0  # keep the SincNet front end frozen for the first N epochs
    sincnet_stride: int = 10
    lstm_hidden_size: int = 128
    lstm_num_layers: int = 4
    linear_hidden_size: int = 128
    linear_num_layers: int = 2
    dropout: float = 0.0

    def problems(self) -> Problems:
        yield from _positive(self, "sincnet_stride", "lstm_hidden_size", "lstm_num_layers")
        yield from _non_negative(self, "freeze_sincnet_epochs", "linear_hidden_size", "linear_num_layers")
        yield from _probability(self, "dropout")
        if not self.init:
            yield "init", "must be 'random', a checkpoint path or a hub id"


@dataclass
class SegLossConfig:
    """Segmentation loss, and the weights of ``loss/val = w_seg * segmentation + w_vad * vad``.

    ``powerset_ce`` is pyannote's default; the others are computed on the multi-label (per-speaker)
    view of the powerset output. ``dice_weight`` scales the dice or Tversky term added to bce.
    """

    name: SegLossName = "powerset_ce"
    dice_weight: float = 1.0
    tversky_alpha: float = 0.3  # weight of false positives
    tversky_beta: float = 0.7  # weight of false negatives
    segmentation_weight: float = 1.0
    vad_weight: float = 1.0

    def problems(self) -> Problems:
        yield from _non_negative(self, "dice_weight", "tversky_alpha", "tversky_beta", "vad_weight")
        yield from _positive(self, "segmentation_weight")


@dataclass
class AugmentConfig:
    """Waveform augmentation (torch-audiomentations); ``probability`` 0 turns it off."""

    probability: float = 0.0
    gain_db: float = 6.0  # random gain in [-gain_db, +gain_db]
    colored_noise: bool = True
    band_pass: bool = True
    min_snr_db: float = 5.0
    max_snr_db: float = 30.0
    background_noise_dir: str = ""  # a folder of noise recordings, mixed at a random SNR
    # true: on each training batch on the training device (GPU batches), after the loader; false: per batch in the
    # loader processes, as pyannote does it (its collate function)
    on_device: bool = True

    def problems(self) -> Problems:
        yield from _probability(self, "probability")
        yield from _non_negative(self, "gain_db")
        if self.min_snr_db > self.max_snr_db:
            yield "min_snr_db", f"must be <= max_snr_db ({self.max_snr_db}), got {self.min_snr_db}"


@dataclass
class SegConfig:
    """Everything one segmentation fine-tuning run needs."""

    data: SegDataConfig = field(default_factory=SegDataConfig)
    model: SegModelConfig = field(default_factory=SegModelConfig)
    loss: SegLossConfig = field(default_factory=SegLossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    lr_schedule: LrScheduleConfig = field(default_factory=LrScheduleConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    search: SearchConfig = field(default_factory=SearchConfig)


# ---------------------------------------------------------------------------------------------
# Speaker encoder (Conformer + AAM-softmax)
# ---------------------------------------------------------------------------------------------


@dataclass
class SpkDataConfig:
    """Speaker-labelled utterances, crops, sampling and augmentation."""

    root: str = ""  # VoxCeleb layout, Kaldi folder (wav.scp + utt2spk), a CSV file, or a seed-layout dataset
    format: Literal["auto", "voxceleb", "kaldi", "csv", "diarization"] = "auto"
    cache: str = ""  # a training cache (dist-spk data prepare): crops read from it, not decoded; built if missing
    trials: str = ""  # VoxCeleb trial list; "" = ROOT/trials.txt, else generated from held-out speakers
    min_segment_seconds: float = 1.5  # diarization format: shortest non-overlapped stretch kept
    speaker_scope: Literal["file", "global"] = "file"  # diarization format: are labels unique across files?
    heldout_fraction: float = 0.1  # with no trial list: share of speakers held out for generated trials
    crop_seconds: float = 2.0  # random fixed-length training crops
    batch_size: int = 128
    loader_workers: int = 4
    balanced_sampling: bool = True  # every batch draws speakers uniformly
    # random crops drawn per epoch; 0 = one per utterance (and speed). A small dataset (the demo's 192
    # utterances: 6 steps of 32) would otherwise validate after every handful of steps
    crops_per_epoch: int = 0
    noise_dir: str = ""  # noise recordings (e.g. MUSAN); "" with noise_probability > 0 = generated coloured noise
    noise_probability: float = 0.0
    rir_dir: str = ""  # "" with reverb_probability > 0 = generated room impulse responses
    reverb_probability: float = 0.0
    # noise and reverb on each training batch where the model runs (the GPU), not per crop in loader processes
    augment_on_device: bool = True
    speed_perturb: list[float] = field(default_factory=list)  # e.g. [0.9, 1.1]: each speed a new speaker

    def problems(self) -> Problems:
        yield from _positive(self, "crop_seconds", "batch_size", "min_segment_seconds")
        yield from _non_negative(self, "loader_workers", "crops_per_epoch")
        yield from _probability(self, "noise_probability", "reverb_probability", "heldout_fraction")
        for speed in self.speed_perturb:
            if not 0.5 <= speed <= 2.0:
                yield "speed_perturb", f"speeds must lie in [0.5, 2.0], got {speed}"


@dataclass
class FrontendConfig:
    """Log-mel filterbanks with mean normalisation, optionally SpecAugment."""

    n_mels: int = 80
    specaugment: bool = False
    freq_mask: int = 10  # widest frequency mask, in mel bins
    time_mask: int = 20  # widest time mask, in frames

    def problems(self) -> Problems:
        yield from _positive(self, "n_mels")
        yield from _non_negative(self, "freq_mask", "time_mask")


@dataclass
class SpkModelConfig:
    """Encoder architecture: an MFA-Conformer, or speechbrain's ECAPA-TDNN baseline."""

    arch: Literal["conformer", "ecapa"] = "conformer"
    emb_size: int = 192
    d_model: int = 256
    num_blocks: int = 6
    num_heads: int = 4
    ffn_dim: int = 1024
    kernel_size: int = 15
    dropout: float = 0.1

    def problems(self) -> Problems:
        yield from _positive(self, "emb_size", "d_model", "num_blocks", "num_heads", "ffn_dim", "kernel_size")
        yield from _probability(self, "dropout")
        if self.d_model % self.num_heads:
            yield "d_model", f"must be divisible by num_heads ({self.num_heads}), got {self.d_model}"


@dataclass
class HeadConfig:
    """Classification head: AAM-softmax (additive angular margin) or plain softmax."""

    type: Literal["aam", "softmax"] = "aam"
    margin: float = 0.2
    scale: float = 30.0
    subcenters: int = 1
    margin_warmup_epochs: int = 0  # the margin ramps linearly from 0 to ``margin`` over these epochs

    def problems(self) -> Problems:
        yield from _non_negative(self, "margin", "margin_warmup_epochs")
        yield from _positive(self, "scale", "subcenters")


@dataclass
class SpkEvalConfig:
    """How each epoch's held-out embeddings are clustered for ``ari``, ``nmi`` and ``fmi`` (with the oracle speaker
    count where the method takes one; :mod:`dist_spk.speaker.clustering`)."""

    clustering: Literal["agglomerative", "hdbscan", "bisecting_kmeans"] = "agglomerative"


@dataclass
class SpkConfig:
    """Everything one speaker-encoder training run needs."""

    data: SpkDataConfig = field(default_factory=SpkDataConfig)
    frontend: FrontendConfig = field(default_factory=FrontendConfig)
    model: SpkModelConfig = field(default_factory=SpkModelConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    eval: SpkEvalConfig = field(default_factory=SpkEvalConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    lr_schedule: LrScheduleConfig = field(default_factory=LrScheduleConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    search: SearchConfig = field(default_factory=SearchConfig)

    def problems(self) -> Problems:
        if self.trainer.limit_val_batches is not None:
            yield "trainer.limit_val_batches", "must be none: EER needs every held-out utterance embedded"
