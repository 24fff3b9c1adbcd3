"""Read audio facts (format, rate, channels, duration) from the file itself, decoding it fully.

libsndfile (``soundfile``) reads WAV/FLAC/OGG fast and without FFmpeg; any other container goes
through torchcodec, the decoder pyannote.audio 4 trains with, so a file that passes here also
decodes during training.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import soundfile

from dist_spk.errors import ConfigError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".sph")
_BLOCK_FRAMES = 1 << 20


class AudioError(Exception):
    """The file is missing or does not decode."""


@dataclass(frozen=True)
class AudioInfo:
    """What the audio file says about itself, after a full decode."""

    path: Path
    format: str
    sample_rate: int
    channels: int
    duration: float  # seconds actually decoded


def _probe_soundfile(path: Path) -> AudioInfo:
    with soundfile.SoundFile(path) as sound:
        decoded = sum(len(block) for block in sound.blocks(blocksize=_BLOCK_FRAMES, dtype="float32"))
        if sound.frames and decoded < sound.frames:
            raise AudioError(f"truncated: header says {sound.frames} frames, decoded {decoded}")
        return AudioInfo(path, sound.format, sound.samplerate, sound.channels, decoded / sound.samplerate)


def _probe_torchcodec(path: Path) -> AudioInfo:
    from torchcodec.decoders import AudioDecoder  # FFmpeg-backed; imported only for non-libsndfile formats

    decoder = AudioDecoder(str(path))
    samples = decoder.get_all_samples()
    meta = decoder.metadata
    channels, frames = samples.data.shape
    return AudioInfo(path, str(meta.codec or path.suffix.lstrip(".")).upper(), samples.sample_rate, channels,
                     frames / samples.sample_rate)


def probe(path: str | Path) -> AudioInfo:
    """Decode ``path`` fully and return its facts.

    Raises
    ------
    AudioError
        When the file is missing, empty or does not decode, with the decoder's reason.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError("file not found")
    if path.stat().st_size == 0:
        raise AudioError("file is empty")
    try:
        libsndfile = path.suffix.lower() in (".wav", ".flac", ".ogg")
        info = _probe_soundfile(path) if libsndfile else _probe_torchcodec(path)
    except AudioError:
        raise
    except Exception as err:  # decoders raise many types (RuntimeError, LibsndfileError, ValueError)
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise AudioError(f"does not decode as audio ({reason})") from None
    if info.duration <= 0:
        raise AudioError("decodes to zero samples")
    return info


def augmentation_files(data) -> tuple[list[Path], list[Path]]:
    """The speaker task's noise and room-response recordings (``data.noise_dir``, ``data.rir_dir`` of a
    SpkDataConfig), each only when its probability is above 0; a ConfigError naming the key when a folder has none."""
    noises = audio_files(data.noise_dir, "data.noise_dir") if data.noise_dir and data.noise_probability > 0 else []
    rirs = audio_files(data.rir_dir, "data.rir_dir") if data.rir_dir and data.reverb_probability > 0 else []
    return noises, rirs


def audio_files(folder: str, key: str) -> list[Path]:
    """Audio files under ``folder``, or one :class:`ConfigError` naming the config key."""
    root = Path(folder).expanduser()
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS) if root.is_dir() else []
    if not files:
        raise ConfigError(f"{key}: no audio files in {root}")
    return files
