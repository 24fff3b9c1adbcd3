"""Speaker crops' waveforms: mono float32 at 16 kHz, read from any stretch of a file, cut or repeated to a length."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from dist_spk.data.audio import read_mono

SAMPLE_RATE = 16000


def read_audio(path: Path, *, start: float = 0.0, seconds: float | None = None) -> np.ndarray:
    """Mono float32 at 16 kHz from ``start`` for ``seconds`` (all when None); resampled when needed; any format
    ``data check`` accepts (:func:`dist_spk.data.audio.read_mono`)."""
    return read_mono(path, start=start, seconds=seconds, sample_rate=SAMPLE_RATE)


def fit_length(audio: np.ndarray, samples: int) -> np.ndarray:
    """Exactly ``samples`` long: cut, or repeat a short utterance end to end (the usual speaker-training way)."""
    if len(audio) == 0:
        return np.zeros(samples, dtype=np.float32)
    return np.tile(audio, math.ceil(samples / len(audio)))[:samples]
