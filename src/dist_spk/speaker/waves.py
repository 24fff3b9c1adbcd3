"""Speaker crops' waveforms: mono float32 at 16 kHz, read from any stretch of a file, cut or repeated to a length."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio

SAMPLE_RATE = 16000


def read_audio(path: Path, *, start: float = 0.0, seconds: float | None = None) -> np.ndarray:
    """Mono float32 at 16 kHz from ``start`` for ``seconds`` (all when None); resampled when needed."""
    with soundfile.SoundFile(str(path)) as sound:
        rate = sound.samplerate
        sound.seek(int(round(start * rate)))
        frames = -1 if seconds is None or not math.isfinite(seconds) else int(round(seconds * rate))
        audio = sound.read(frames, dtype="float32", always_2d=True).mean(axis=1)
    if rate != SAMPLE_RATE:
        audio = torchaudio.functional.resample(torch.from_numpy(audio), rate, SAMPLE_RATE).numpy()
    return audio


def fit_length(audio: np.ndarray, samples: int) -> np.ndarray:
    """Exactly ``samples`` long: cut, or repeat a short utterance end to end (the usual speaker-training way)."""
    if len(audio) == 0:
        return np.zeros(samples, dtype=np.float32)
    return np.tile(audio, math.ceil(samples / len(audio)))[:samples]
