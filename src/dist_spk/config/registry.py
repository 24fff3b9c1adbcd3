"""The task registry: everything dist_spk knows about a task, in one frozen entry.

A new task (a NeMo or WavLM-based one, say) is one more :class:`TaskSpec` in :data:`TASKS`, plus the modules it
names: its config class and presets (here in ``config/``), its worker loop (``train/``), its driver-side data
check and preparation (``launch/``). Every table the rest of the code reads (config classes, presets, worker loops,
checks, preparations, objectives, reported metrics, PBT-mutable keys, checkpoint labels) is read from this one.

Entry points are ``"module:function"`` strings, imported when used: this module is layer 0 (no torch, no Ray at
import) while a worker loop pulls in torch and pyannote, and a check reads datasets.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from dist_spk.config import presets
from dist_spk.config.tasks import SegConfig, SpkConfig
from dist_spk.errors import ConfigError


@dataclass(frozen=True)
class TaskSpec:
    name: str  # what commands call it: dist-spk train NAME, tune NAME
    label: str  # what people call it: messages, checkpoint kinds
    config: type  # its config dataclass
    presets: Mapping[str, Callable[[], Any]]  # preset name -> a fresh config
    objective: str  # the metric that ranks runs and trials; lower is better
    metrics: tuple[str, ...]  # what its loop reports every epoch, in display order
    pbt_mutable: tuple[str, ...]  # keys (or "section." prefixes) PBT may change in a running trial
    loop: str  # "module:function(payload, session)": the training loop inside a worker
    check: str  # "module:function(config) -> None": the data checked on the driver, before any worker starts
    prepare: str  # "module:function(config, run_dir) -> dict": payload entries every worker of a run shares

    def entry(self, point: str) -> Callable[..., Any]:
        """The function ``point`` (``loop``, ``check`` or ``prepare``) names, imported now."""
        module, function = getattr(self, point).split(":")
        return getattr(importlib.import_module(module), function)


SEG_METRICS = (
    "loss/val/segmentation",
    "loss/val/vad",
    "loss/val",
    "DiarizationErrorRate",
    "DiarizationErrorRate/Confusion",
    "DiarizationErrorRate/FalseAlarm",
    "DiarizationErrorRate/Miss",
    "DiarizationErrorRate/Marginal",
    "DiarizationErrorRate/Threshold",
    "DiarizationErrorRate/OneSpeakerWholeChunk",
    "DiarizationErrorRate/OneSpeakerOracleSpeech",
)
SPK_METRICS = ("loss", "accuracy", "eer", "min_dcf", "min_dcf_p05", "ari", "nmi", "fmi", "margin")

TASKS: Mapping[str, TaskSpec] = MappingProxyType({
    "seg": TaskSpec(
        name="seg", label="segmentation", config=SegConfig,
        presets=MappingProxyType({"local": presets.seg_local, "cluster": presets.seg_cluster}),
        objective="DiarizationErrorRate", metrics=SEG_METRICS,
        pbt_mutable=("optim.lr", "optim.weight_decay", "loss.", "augment.probability", "augment.gain_db"),
        loop="dist_spk.train.seg_loop:train_segmentation",
        check="dist_spk.launch.run:check_segmentation_data",
        prepare="dist_spk.launch.run:prepare_segmentation"),
    "spk": TaskSpec(
        name="spk", label="speaker-encoder", config=SpkConfig,
        presets=MappingProxyType({"local": presets.spk_local, "cluster": presets.spk_cluster}),
        objective="eer", metrics=SPK_METRICS,
        pbt_mutable=("optim.lr", "optim.weight_decay", "head.margin", "head.scale", "data.noise_probability",
                     "data.reverb_probability"),
        loop="dist_spk.train.spk_loop:train_speaker",
        check="dist_spk.launch.run:check_speaker_data",
        prepare="dist_spk.launch.run:prepare_speaker"),
})


def task_spec(name: str) -> TaskSpec:
    """The registered task ``name``, or one :class:`ConfigError` listing the valid ones."""
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; valid tasks: {', '.join(TASKS)}")
    return TASKS[name]
