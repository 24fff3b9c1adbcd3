"""Waveform augmentation for segmentation training (torch-audiomentations, as pyannote.audio uses it)."""

from __future__ import annotations

from pathlib import Path

import soundfile
from torch_audiomentations import AddBackgroundNoise, AddColoredNoise, BandPassFilter, Compose, Gain
from torch_audiomentations.utils.io import Audio

from dist_spk.config.tasks import AugmentConfig
from dist_spk.data.audio import AUDIO_EXTENSIONS
from dist_spk.errors import ConfigError


def background_noises(folder: str | Path) -> list[Path]:
    """Audio files under ``folder``, or a :class:`ConfigError` naming it."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise ConfigError(f"augment.background_noise_dir: {root} is not a folder")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise ConfigError(f"augment.background_noise_dir: no audio files in {root}")
    return files


class _HeaderViaSoundfile(Audio):
    """torch-audiomentations 0.12 reads file headers with ``torchaudio.info``, gone since torchaudio 2.9."""

    @staticmethod
    def get_audio_metadata(file_path: str | Path) -> tuple[int, int]:
        info = soundfile.info(str(file_path))
        return info.frames, info.samplerate


def build_augmentation(config: AugmentConfig, *, sample_rate: int = 16000) -> Compose | None:
    """Each enabled transform applied with probability ``config.probability``; None when it is 0.

    Transforms work per example on the chunk batch and return pyannote's ``dict`` output type.
    """
    if config.probability <= 0:
        return None
    p = config.probability
    transforms = [Gain(min_gain_in_db=-config.gain_db, max_gain_in_db=config.gain_db, p=p, output_type="dict")]
    if config.colored_noise:
        transforms.append(AddColoredNoise(min_snr_in_db=config.min_snr_db, max_snr_in_db=config.max_snr_db, p=p,
                                          sample_rate=sample_rate, output_type="dict"))
    if config.band_pass:
        transforms.append(BandPassFilter(p=p, sample_rate=sample_rate, output_type="dict"))
    if config.background_noise_dir:
        noise = AddBackgroundNoise(background_noises(config.background_noise_dir), min_snr_in_db=config.min_snr_db,
                                   max_snr_in_db=config.max_snr_db, p=p, sample_rate=sample_rate, output_type="dict")
        noise.audio = _HeaderViaSoundfile(sample_rate=sample_rate, mono=True)
        transforms.append(noise)
    return Compose(transforms, output_type="dict")
