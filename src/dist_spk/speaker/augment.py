"""Noise and reverberation for speaker-training crops, a whole batch at once, on whichever device holds it.

With ``data.augment_on_device`` (the default) the training step augments each batch after Lightning moved it to the
GPU, so loader processes only slice crops from the cache; with it off, the loader augments its batch on the CPU.

Written by hand rather than with torch-audiomentations (which the segmentation task uses): it has no generated room
responses, which the presets rely on when no ``data.rir_dir`` is given, and it draws from Python's and torch's global
random state, which every loader process copies; here one seeded generator per batch makes every decision.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchaudio

from dist_spk.config.tasks import SpkDataConfig
from dist_spk.data.audio import augmentation_files, duration_of
from dist_spk.speaker.waves import SAMPLE_RATE, fit_length, read_audio

SNR_DB = (5.0, 20.0)  # noise is mixed at a signal-to-noise ratio drawn uniformly from this range
RT60_S = (0.2, 0.8)  # generated rooms' reverberation times


def generated_rirs(rt60: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """(K, L) synthetic room responses on ``generator``'s device: a direct path, then exponentially decaying noise
    reaching -60 dB at each row's ``rt60`` (seconds), unit energy."""
    device = generator.device
    rt60 = rt60.to(device=device, dtype=torch.float32)[:, None]
    t = torch.arange(int(rt60.max() * SAMPLE_RATE), device=device) / SAMPLE_RATE
    tail = torch.randn(len(rt60), len(t), generator=generator, device=device) * torch.exp(-6.9 * t / rt60) * 0.3
    rir = tail * (t < rt60)
    rir[:, 0] = 1.0
    return rir / rir.square().sum(dim=1, keepdim=True).sqrt()


def colored_noises(decay: torch.Tensor, samples: int, generator: torch.Generator) -> torch.Tensor:
    """(K, samples) noise at unit RMS whose power falls as 1/f**decay: 0 white, 1 pink, 2 brown (spectral shaping of
    white noise)."""
    device = generator.device
    white = torch.randn(len(decay), samples, generator=generator, device=device)
    spectrum = torch.fft.rfft(white)
    frequency = torch.arange(spectrum.shape[1], device=device).clamp(min=1)
    noise = torch.fft.irfft(spectrum * frequency ** (-decay.to(device, torch.float32)[:, None] / 2), n=samples)
    return noise / (noise.square().mean(dim=1, keepdim=True).sqrt() + 1e-12)


def read_stretch(path: Path, start: float, samples: int) -> np.ndarray:
    """``samples`` of mono 16 kHz audio from ``start`` seconds, repeated end to end when the file is shorter."""
    return fit_length(read_audio(path, start=start, seconds=samples / SAMPLE_RATE), samples)


class CropAugment:
    """Additive noise (recordings from ``data.noise_dir``, or generated white, pink or brown noise) at 5-20 dB SNR
    and reverberation (responses from ``data.rir_dir``, or generated rooms), each crop with its probability.

    Call it on a (B, N) float batch; ``rng`` makes its decisions (a loader passes its batch's generator; on the device
    each call draws the next of the augmenter's own seeded sequence).
    """

    def __init__(self, config: SpkDataConfig, *, seed: int = 0):
        self.noise_p = config.noise_probability
        self.reverb_p = config.reverb_probability
        self.noises, self.rirs = augmentation_files(config)
        self.seed = seed
        self.calls = 0
        self._seconds: dict[Path, float] = {}  # each noise file's duration, read once

    @property
    def active(self) -> bool:
        return self.noise_p > 0 or self.reverb_p > 0

    def __call__(self, waves: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        if rng is None:
            rng = np.random.default_rng([self.seed, self.calls])
            self.calls += 1
        generator = torch.Generator(device=waves.device).manual_seed(int(rng.integers(2**62)))
        rows = np.arange(len(waves))
        reverb, noisy = rows[rng.random(len(rows)) < self.reverb_p], rows[rng.random(len(rows)) < self.noise_p]
        waves = waves.clone()
        if len(reverb):
            waves[reverb] = self._reverberate(waves[reverb], rng, generator)
        if len(noisy):
            waves[noisy] = self._add_noise(waves[noisy], rng, generator)
        return waves

    def _reverberate(self, dry: torch.Tensor, rng: np.random.Generator, generator: torch.Generator) -> torch.Tensor:
        """Each row convolved with a room response, at its own level (the response's gain is not the room's)."""
        if self.rirs:
            chosen = [torch.from_numpy(read_audio(self.rirs[i])) for i in rng.integers(len(self.rirs), size=len(dry))]
            rir = torch.nn.utils.rnn.pad_sequence(chosen, batch_first=True).to(dry.device)
        else:
            rir = generated_rirs(torch.from_numpy(rng.uniform(*RT60_S, size=len(dry))), generator)
        wet = torchaudio.functional.fftconvolve(dry, rir)[:, : dry.shape[1]]
        return wet * (dry.std(dim=1, correction=0, keepdim=True) / (wet.std(dim=1, correction=0, keepdim=True) + 1e-8))

    def _add_noise(self, clean: torch.Tensor, rng: np.random.Generator, generator: torch.Generator) -> torch.Tensor:
        samples = clean.shape[1]
        if self.noises:  # a random stretch of a random recording: only that stretch is read
            stretches = [read_stretch(path, rng.uniform(0, max(0.0, self._duration(path) - samples / SAMPLE_RATE)),
                                      samples) for path in (self.noises[i] for i in rng.integers(len(self.noises),
                                                                                                  size=len(clean)))]
            noise = torch.from_numpy(np.stack(stretches)).to(clean.device)
        else:
            noise = colored_noises(torch.from_numpy(rng.integers(3, size=len(clean))), samples, generator)
        snr_db = torch.from_numpy(rng.uniform(*SNR_DB, size=len(clean))).to(clean.device, torch.float32)[:, None]
        gain = (clean.square().mean(dim=1, keepdim=True) / (noise.square().mean(dim=1, keepdim=True) + 1e-10)
                / 10 ** (snr_db / 10)).sqrt()
        return clean + gain * noise

    def _duration(self, path: Path) -> float:
        if path not in self._seconds:
            self._seconds[path] = duration_of(path)
        return self._seconds[path]
