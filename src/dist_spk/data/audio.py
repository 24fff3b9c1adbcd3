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


LIBSNDFILE = (".wav", ".flac", ".ogg")  # read with libsndfile (fast, no FFmpeg); every other format with torchcodec


def read_mono(path: str | Path, *, start: float = 0.0, seconds: float | None = None, sample_rate: int = 16000):
    """Mono float32 samples at ``sample_rate`` from ``start`` for ``seconds`` (to the end when None or infinite).

    The one reader behind every training and evaluation read, for every format :func:`probe` (``data check``)
    accepts: WAV/FLAC/OGG through libsndfile (resampled with torchaudio when needed), the rest (m4a, mp3, opus, ...)
    through torchcodec, which pyannote.audio decodes with, resampling and downmixing in FFmpeg.
    """
    import math

    import numpy as np

    path = Path(path)
    end = None if seconds is None or not math.isfinite(seconds) else start + seconds
    if path.suffix.lower() in LIBSNDFILE:
        with soundfile.SoundFile(str(path)) as sound:
            rate = sound.samplerate
            sound.seek(int(round(start * rate)))
            frames = -1 if end is None else int(round(seconds * rate))
            audio = sound.read(frames, dtype="float32", always_2d=True).mean(axis=1)
        if rate != sample_rate:
            import torch
            import torchaudio

            audio = torchaudio.functional.resample(torch.from_numpy(audio), rate, sample_rate).numpy()
        return audio
    from torchcodec.decoders import AudioDecoder

    decoder = AudioDecoder(str(path), sample_rate=sample_rate, num_channels=1)
    samples = decoder.get_samples_played_in_range(start_seconds=start, stop_seconds=end)
    return np.ascontiguousarray(samples.data[0].numpy(), dtype=np.float32)


def duration_of(path: str | Path) -> float:
    """A file's duration in seconds from its header (libsndfile, or torchcodec's metadata for other formats)."""
    path = Path(path)
    if path.suffix.lower() in LIBSNDFILE:
        try:
            return soundfile.info(str(path)).duration
        except soundfile.LibsndfileError:  # a WAV codec libsndfile does not know: FFmpeg may
            pass
    from torchcodec.decoders import AudioDecoder

    metadata = AudioDecoder(str(path)).metadata
    seconds = metadata.duration_seconds_from_header or metadata.duration_seconds
    if seconds is None:  # a container without a duration in its header: decode it
        return probe(path).duration
    return float(seconds)


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
        libsndfile = path.suffix.lower() in LIBSNDFILE
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
