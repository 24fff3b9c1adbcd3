"""Speaker-training data: random crops, speaker-balanced sampling, noise, reverb and speed perturbation.

Manifests travel as JSON lines (``key path speaker start end``) written by the driver into the run
directory, so workers on any node read the same lists.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torchaudio
from torch.utils.data import Dataset, Sampler

from dist_spk.config.tasks import SpkDataConfig
from dist_spk.data.audio import duration_of
from dist_spk.data.speakers import Utterance
from dist_spk.data.training_cache import TrainingCache, to_float
from dist_spk.speaker.augment import CropAugment
from dist_spk.speaker.waves import SAMPLE_RATE, fit_length, read_audio


def write_manifest(path: Path, utterances: list[Utterance]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(u) | {"path": str(u.path)}) + "\n" for u in utterances))


def read_manifest(path: Path) -> list[Utterance]:
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [Utterance(r["key"], Path(r["path"]), r["speaker"], r["start"], r["end"]) for r in rows]


def read_cached(cache: TrainingCache | None, path: Path, *, start: float, seconds: float | None) -> np.ndarray:
    """:func:`read_audio`, sliced from ``cache`` when it holds the file (the same samples, no decode)."""
    if cache is not None and path in cache:
        return cache.read(path, start=start, seconds=seconds)
    return read_audio(path, start=start, seconds=seconds)


class CropPlan(NamedTuple):
    """Where one training crop is read: its file, start (s), seconds to read (fewer than the crop needs when the
    utterance is shorter), whether a whole crop fits, and its speed."""

    path: Path
    start: float
    seconds: float
    fits: bool
    speed: float


class TrainCrops(Dataset):
    """Random fixed-length crops. Item i is utterance ``i % U`` at speed ``speeds[i // U]``.

    Speed perturbation (Kaldi style: tempo and pitch change together) makes each speed a new speaker:
    label ``speed_index * num_speakers + speaker``.
    """

    def __init__(self, utterances: list[Utterance], speakers: list[str], config: SpkDataConfig, *, seed: int = 0,
                 cache: TrainingCache | None = None):
        self.utterances = utterances
        self.cache = cache  # a training cache holding the utterances' files: crops sliced, not decoded
        self.index = {s: i for i, s in enumerate(speakers)}
        self.speeds = [1.0, *[s for s in config.speed_perturb if s != 1.0]]
        self.crop = int(config.crop_seconds * SAMPLE_RATE)
        # augmented here (on the CPU) only without data.augment_on_device; else the training step augments
        self.augment = CropAugment(config, seed=seed) if not config.augment_on_device else None
        self.seed = seed
        self.calls = 0
        self._durations: dict[Path, float] = {}

    @property
    def num_classes(self) -> int:
        return len(self.index) * len(self.speeds)

    def _file_seconds(self, path: Path) -> float:
        """A file's duration, read once per file (not per crop)."""
        if path not in self._durations:
            self._durations[path] = (len(self.cache.waveform(path)) / SAMPLE_RATE
                                     if self.cache is not None and path in self.cache
                                     else duration_of(path))
        return self._durations[path]

    def labels(self) -> list[int]:
        return [self.label(i) for i in range(len(self))]

    def label(self, item: int) -> int:
        speed_index, utterance = divmod(item, len(self.utterances))
        return speed_index * len(self.index) + self.index[self.utterances[utterance].speaker]

    def __len__(self) -> int:
        return len(self.utterances) * len(self.speeds)

    def __getitem__(self, item: int) -> tuple[torch.Tensor, int]:
        waves, labels = self.__getitems__([item])
        return to_float(waves[0]), int(labels[0])

    def __getitems__(self, items: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch: crops (B, N) and labels (B,). torch's DataLoader calls this with a batch's indices when a
        dataset has it; the batch is already collated (use :func:`collated` as the loader's ``collate_fn``). Crops
        all gathered from the cache come as int16 (converted on the training device: ``training_cache.to_float``).

        One random generator per batch draws every crop's position; with a training cache, the crops that fit in
        their utterance are gathered from the memory map in one indexing step per speed (no per-crop Python), the
        rest are read one by one. Crops of one speed and length are then resampled together (speed perturbation),
        so a cached run sees the same crops, bit for bit, as a decoding one.
        """
        rng = np.random.default_rng([self.seed, items[0], len(items), self.calls])
        self.calls += 1
        plans = [self._crop_plan(item, position) for item, position in zip(items, rng.random(len(items)), strict=True)]
        spans = [self.cache.span(plan.path, plan.start, _samples(plan)) if self.cache is not None and plan.fits
                 else None for plan in plans]
        labels = torch.tensor([self.label(item) for item in items])
        augment = self.augment if self.augment is not None and self.augment.active else None
        if augment is None and all(first is not None and plan.speed == 1.0
                                   for plan, first in zip(plans, spans, strict=True)):  # the usual case with a cache
            return torch.from_numpy(self.cache.gather(np.array(spans), self.crop)), labels  # int16, see to_float
        read = self._read(plans, spans)
        groups: dict[tuple[float, int], list[int]] = defaultdict(list)  # rows resampled together
        for row, plan in enumerate(plans):
            groups[plan.speed, len(read[row])].append(row)
        waves = torch.empty(len(items), self.crop)
        for (speed, _), rows in groups.items():
            waves[rows] = self._at_speed(torch.stack([read[row] for row in rows]), speed)
        return (waves if augment is None else augment(waves, rng)), labels

    def _read(self, plans: list[CropPlan], spans: list[int | None]) -> list[torch.Tensor]:
        """Each crop's samples before its speed change (float): gathered from the cache, one block per speed, where
        ``spans`` has a position; else read on their own."""
        read: list[torch.Tensor | None] = [None] * len(plans)
        for speed in {plan.speed for plan, first in zip(plans, spans, strict=True) if first is not None}:
            rows = [row for row, first in enumerate(spans) if first is not None and plans[row].speed == speed]
            block = self.cache.gather(np.array([spans[row] for row in rows]), _samples(plans[rows[0]]))
            for row, samples in zip(rows, to_float(torch.from_numpy(block)), strict=True):
                read[row] = samples
        for row, plan in enumerate(plans):
            if read[row] is None:
                read[row] = torch.from_numpy(read_cached(self.cache, plan.path, start=plan.start,
                                                         seconds=plan.seconds))
        return read

    def _at_speed(self, block: torch.Tensor, speed: float) -> torch.Tensor:
        """(K, n) crops read at ``speed``, played back faster/slower (resampled as if recorded at rate * speed), then
        cut or repeated end to end to ``self.crop`` samples."""
        if speed != 1.0:
            block = torchaudio.functional.resample(block, int(SAMPLE_RATE * speed), SAMPLE_RATE)
        if block.shape[1] == 0:
            return torch.zeros(len(block), self.crop)
        return block.repeat(1, math.ceil(self.crop / block.shape[1]))[:, : self.crop]

    def _crop_plan(self, item: int, position: float) -> CropPlan:
        """Item's crop at ``position`` in [0, 1) of the room its utterance leaves."""
        speed = self.speeds[item // len(self.utterances)]
        utterance = self.utterances[item % len(self.utterances)]
        length = self._samples(utterance)
        need = self.crop * speed  # samples to read before the speed change
        start = utterance.start + position * max(0.0, length - need) / SAMPLE_RATE
        return CropPlan(utterance.path, start, min(need, length) / SAMPLE_RATE, length >= need, speed)

    def _samples(self, utterance: Utterance) -> float:
        """The utterance's length in samples (to its file's end when it has no end time)."""
        if utterance.duration is not None:
            return utterance.duration * SAMPLE_RATE
        return (self._file_seconds(utterance.path) - utterance.start) * SAMPLE_RATE


def _samples(plan: CropPlan) -> int:
    """The samples a crop reads (as :meth:`TrainingCache.read` rounds its seconds)."""
    return int(round(plan.seconds * SAMPLE_RATE))


def collated(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The DataLoader's ``collate_fn`` for :class:`TrainCrops`: its batches come collated (``__getitems__``)."""
    return batch


class BalancedSampler(Sampler[int]):
    """Each draw picks a class uniformly, then one of its items uniformly; ``size`` draws per epoch (default
    ``len(labels)``)."""

    def __init__(self, labels: list[int], *, seed: int = 0, size: int = 0):
        self.by_class: dict[int, list[int]] = {}
        for item, label in enumerate(labels):
            self.by_class.setdefault(label, []).append(item)
        self.classes = sorted(self.by_class)
        self.size = size or len(labels)
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        self.epoch += 1
        for label in rng.choice(self.classes, size=self.size):
            items = self.by_class[int(label)]
            yield items[rng.integers(len(items))]


class EvalUtterances(Dataset):
    """Whole utterances (capped at ``max_seconds``) for embedding, with their index."""

    def __init__(self, utterances: list[Utterance], *, max_seconds: float = 20.0, cache: TrainingCache | None = None):
        self.utterances = utterances
        self.max_seconds = max_seconds
        self.cache = cache

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, index: int) -> tuple[int, torch.Tensor]:
        u = self.utterances[index]
        seconds = min(self.max_seconds, u.duration) if u.duration is not None else self.max_seconds
        audio = read_cached(self.cache, u.path, start=u.start, seconds=seconds)
        return index, torch.from_numpy(fit_length(audio, max(len(audio), 8000)))  # at least 0.5 s


def pad_batch(items: list[tuple[int, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(indices, padded waves (B, N), lengths (B,))."""
    indices = torch.tensor([i for i, _ in items])
    lengths = torch.tensor([len(w) for _, w in items])
    waves = torch.zeros(len(items), int(lengths.max()))
    for row, (_, wave) in enumerate(items):
        waves[row, : len(wave)] = wave
    return indices, waves, lengths
