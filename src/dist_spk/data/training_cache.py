"""Prepare once, train many: a dataset's audio decoded once into a memory-mapped training cache.

``dist-spk data prepare ROOT --out CACHE`` (or ``data.cache=CACHE`` on a training run or a search, which builds it
when missing) decodes every audio file of a dataset once, at 16 kHz mono, into one int16 array::

    CACHE/audio.int16     every file's samples, one after the other (np.memmap)
    CACHE/manifest.json   format, sample rate, per file: its path (the key), offset, samples, size, mtime, sha1

A cache is written into a temporary folder and renamed into place when complete, so a half-written cache is never
found. Opening one checks each source file's size and modification time against the manifest (a changed dataset
is refused, naming the file: run ``data prepare`` again) and the array's size (a damaged cache is refused). The
manifest keeps each file's sha1 (what was decoded).

Crops follow pyannote's ``Audio.crop`` exactly (start ``round(t * rate)``, the samples up to ``round(end * rate)``,
then trimmed or zero-padded to ``round(duration * rate)``), so chunks read from the cache equal pyannote's for a 16 kHz
16-bit source (tests/integration/test_training_cache.py). Other sources are resampled and downmixed once, at
preparation, instead of per chunk: close, not bit-equal. Labels are not cached here: pyannote's metadata cache
already holds every file's annotations as arrays, and its label framing is vectorised.

Ray-free: the files are decoded in this process, or by a Ray Data job across a cluster's nodes
(:mod:`dist_spk.launch.prepare_cache`), and written into one cache here either way.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from dist_spk.errors import DataError
from dist_spk.runs.locks import exclusive

FORMAT = 1
SAMPLE_RATE = 16000
AUDIO = "audio.int16"
MANIFEST = "manifest.json"
MARK = ".dist_spk-training-cache"  # written into every cache this project makes: only such a folder is ever replaced


@dataclass(frozen=True)
class CachedFile:
    key: str  # the source's resolved path
    offset: int  # first sample in audio.int16
    samples: int
    size: int
    mtime_ns: int
    sha1: str


def _decode(path: Path) -> np.ndarray:
    """The whole file as 16 kHz mono int16 (16-bit 16 kHz mono sources: their samples, unchanged)."""
    import soundfile

    from dist_spk.data.audio import LIBSNDFILE, read_mono

    if path.suffix.lower() in LIBSNDFILE:
        info = soundfile.info(str(path))
        if info.samplerate == SAMPLE_RATE and info.channels == 1 and info.subtype == "PCM_16":
            return soundfile.read(str(path), dtype="int16")[0]
    audio = read_mono(path, sample_rate=SAMPLE_RATE)  # downmixed and resampled; m4a, mp3, opus through FFmpeg
    return np.clip(np.round(audio * 32768), -32768, 32767).astype(np.int16)


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def decode_file(key: str) -> dict:
    """One source file decoded for the cache: its samples (int16 bytes), size, mtime and sha1 (keyed by path).

    A plain function of a path, so a distributed engine can run it on any node (launch/prepare_cache.py).
    """
    path = Path(key)
    stat = path.stat()
    return {"key": key, "samples": _decode(path).tobytes(), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "sha1": _sha1(path)}


def source_keys(sources: list[Path]) -> list[str]:
    """The cache keys of ``sources`` (resolved paths, each once, sorted: the cache's file order)."""
    return sorted({str(Path(p).resolve()) for p in sources})


def prepare(sources: list[Path], out: Path, *, progress: bool = True,
            decoded: Iterable[dict] | None = None) -> Path:
    """Decode ``sources`` into a cache at ``out`` (replaced when it exists); return ``out``.

    ``decoded``: the :func:`decode_file` records of :func:`source_keys` (sources), in that order, from elsewhere
    (a Ray Data job across a cluster's nodes); by default each file is decoded here, one after the other.
    """
    keys = source_keys(sources)
    if not keys:
        raise DataError(f"{out}: no audio files to cache")
    out = Path(out)
    _check_replaceable(out, keys)
    out.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(out.with_name(f".{out.name}.lock")):  # two builders of one cache take turns
        _check_replaceable(out, keys)  # what the other builder left
        return _prepare(keys, out, progress=progress, decoded=decoded)


def _check_replaceable(out: Path, keys: list[str]) -> None:
    """A folder that is not a cache this project made is never replaced (a dataset may hold a manifest.json of its
    own: NeMo's do), and a cache never goes where the dataset's own files are."""
    resolved = out.resolve()
    inside = next((key for key in keys if Path(key).is_relative_to(resolved)), None)
    if inside is not None:
        raise DataError(f"{out}: the cache folder would hold the dataset's own files ({inside}); nothing was "
                        "written, choose a folder outside the dataset")
    if out.is_dir() and any(out.iterdir()) and not is_training_cache(out):
        raise DataError(f"{out}: exists and is not a training cache dist_spk made (no {MARK}); nothing was "
                        "written, choose an empty or new folder")


def is_training_cache(folder: Path) -> bool:
    """Whether ``folder`` is a cache this project made: it carries the mark (or, made before the mark, holds exactly
    a manifest of this format and the audio array)."""
    if (folder / MARK).is_file():
        return True
    if {p.name for p in folder.iterdir()} != {AUDIO, MANIFEST}:
        return False
    try:
        return json.loads((folder / MANIFEST).read_text()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def _prepare(keys: list[str], out: Path, *, progress: bool, decoded: Iterable[dict] | None) -> Path:
    from tqdm import tqdm

    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-partial-", dir=out.parent))
    records = map(decode_file, keys) if decoded is None else decoded
    try:
        files, offset = [], 0
        with (staging / AUDIO).open("wb") as handle:
            for key, record in zip(keys, tqdm(records, total=len(keys), desc=f"caching {len(keys)} files",
                                              unit="file", leave=False, disable=None if progress else True),
                                   strict=True):  # disable None: on a terminal only
                if record["key"] != key:
                    raise DataError(f"{out}: decoded {record['key']} where {key} was expected: nothing was written")
                handle.write(record["samples"])
                samples = len(record["samples"]) // 2
                files.append(CachedFile(key, offset, samples, record["size"], record["mtime_ns"], record["sha1"]))
                offset += samples
        manifest = {"format": FORMAT, "sample_rate": SAMPLE_RATE, "samples": offset,
                    "files": [asdict(f) for f in files]}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        (staging / MARK).write_text("a training cache made by dist-spk data prepare; replaced when prepared again\n")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)  # complete, or not there at all
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def _to_float(samples: np.ndarray) -> np.ndarray:
    """int16 -> float32 in [-1, 1), as decoders give them (one pass)."""
    return np.multiply(samples, np.float32(1 / 32768), dtype=np.float32)


def to_float(waves):
    """A batch from :meth:`TrainingCache.gather` (int16, as a torch tensor) as float32 in [-1, 1), on its device;
    float batches unchanged. Exact: every int16 / 32768 is a float32."""
    import torch

    return waves.to(torch.float32).mul_(1 / 32768) if waves.dtype == torch.int16 else waves


class TrainingCache:
    """An opened cache: crops by source path, read from the memory map (shared by loader processes)."""

    def __init__(self, path: Path, files: dict[str, CachedFile], samples: int):
        self.path, self.files, self.samples = Path(path), files, samples
        self._audio: np.ndarray | None = None
        self._keys: dict[str, str | None] = {}  # a source as given -> its key (resolved once: no syscalls per crop)

    @property
    def audio(self) -> np.ndarray:
        if self._audio is None:  # opened lazily: in each loader process after a fork or a pickle
            mapped = np.memmap(self.path / AUDIO, dtype=np.int16, mode="r", shape=(self.samples,))
            self._audio = mapped.view(np.ndarray)  # plain slices: np.memmap's per-slice bookkeeping costs per crop
        return self._audio

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_audio": None}

    def _key(self, source: str | Path) -> str | None:
        given = str(source)
        if given not in self._keys:
            resolved = str(Path(given).resolve())
            self._keys[given] = resolved if resolved in self.files else None
        return self._keys[given]

    def __contains__(self, source: str | Path) -> bool:
        return self._key(source) is not None

    def waveform(self, source: str | Path) -> np.ndarray:
        """A file's whole int16 waveform (a view of the map)."""
        key = self._key(source)
        if key is None:
            raise KeyError(f"{source} is not in the training cache {self.path}")
        entry = self.files[key]
        return self.audio[entry.offset: entry.offset + entry.samples]

    def crop(self, source: str | Path, start: float, end: float, *, pad: bool = False,
             as_int16: bool = False) -> np.ndarray:
        """float32 samples of [start, end) seconds, as pyannote's ``Audio.crop`` gives them (``as_int16``: the
        cached int16 samples, for :func:`to_float` to convert where they are used)."""
        waveform = self.waveform(source)
        first, last = round(start * SAMPLE_RATE), round(end * SAMPLE_RATE)
        expected = round((end - start) * SAMPLE_RATE)
        if (first < 0 or last > len(waveform)) and not pad:
            raise ValueError(f"{source}: [{start:.3f}, {end:.3f}] s is outside the file "
                             f"({len(waveform) / SAMPLE_RATE:.3f} s)")
        before = max(0, -first)
        data = waveform[max(0, first): min(last, len(waveform))]
        if before or len(data) < expected:
            data = np.pad(data, (before, max(0, expected - before - len(data))))
        data = data[:expected]
        return np.array(data) if as_int16 else _to_float(data)  # a copy: never a view of the read-only map

    def span(self, source: str | Path, start: float, samples: int) -> int | None:
        """Where ``samples`` samples from ``start`` seconds into ``source`` begin in the whole cache (rounded as
        :meth:`read` rounds), or None when the file is not cached or they do not all lie inside it."""
        key = self._key(source)
        if key is None:
            return None
        entry, first = self.files[key], int(round(start * SAMPLE_RATE))
        return entry.offset + first if first >= 0 and first + samples <= entry.samples else None

    def gather(self, first: np.ndarray, samples: int) -> np.ndarray:
        """int16 (len(first), samples): row i is the cache's samples from ``first[i]`` on, in one indexing step.

        Left as int16 (use :func:`to_float` where the batch is used): half the bytes to move, and the conversion runs
        on the training device instead of in the loader process, where it was most of a batch's cost.
        """
        windows = np.lib.stride_tricks.sliding_window_view(self.audio, samples)  # a view: no copy
        return windows[first]  # one copy of each row

    def read(self, source: str | Path, *, start: float = 0.0, seconds: float | None = None) -> np.ndarray:
        """float32 samples as :func:`dist_spk.speaker.waves.read_audio` reads them (from ``round(start * rate)``,
        ``round(seconds * rate)`` of them, fewer at the end of the file)."""
        waveform = self.waveform(source)
        first = int(round(start * SAMPLE_RATE))
        whole = seconds is None or not np.isfinite(seconds)
        count = len(waveform) - first if whole else int(round(seconds * SAMPLE_RATE))
        return _to_float(waveform[first: first + count])


def open_cache(path: str | Path, *, sources: list[Path] | None = None) -> TrainingCache:
    """Open a prepared cache; with ``sources`` (the dataset's files now), refuse one that is stale or incomplete.

    Every problem is one :class:`DataError` naming the cache and what is wrong.
    """
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a training cache ({MANIFEST}: {type(err).__name__}); build it with "
                        f"'dist-spk data prepare ROOT --out {path}'") from None
    audio_bytes = (path / AUDIO).stat().st_size if (path / AUDIO).is_file() else -1
    files = checked_files(str(path), manifest, audio_bytes, sources)
    return TrainingCache(path, files, manifest["samples"])


def checked_files(name: str, manifest: dict, audio_bytes: int,
                  sources: list[Path] | None = None) -> dict[str, CachedFile]:
    """The cache ``name``'s files from its ``manifest``, once its format, its audio's size (``audio_bytes``, -1 when
    missing) and, with ``sources``, its freshness are checked; every problem one :class:`DataError` naming it."""
    if manifest.get("format") != FORMAT or manifest.get("sample_rate") != SAMPLE_RATE:
        raise DataError(f"{name}: cache format {manifest.get('format')} at {manifest.get('sample_rate')} Hz; this "
                        f"version reads format {FORMAT} at {SAMPLE_RATE} Hz: prepare it again")
    files = {f["key"]: CachedFile(**f) for f in manifest["files"]}
    expected = manifest["samples"] * 2
    if audio_bytes != expected:
        raise DataError(f"{name}/{AUDIO}: {audio_bytes} bytes, the manifest says {expected}: the cache is damaged; "
                        "prepare it again")
    for source in sources or []:
        key = str(Path(source).resolve())
        entry = files.get(key)
        if entry is None:
            raise DataError(f"{name}: stale: {key} is in the dataset but not in the cache; prepare it again")
        stat = os.stat(key)
        if (stat.st_size, stat.st_mtime_ns) != (entry.size, entry.mtime_ns):
            raise DataError(f"{name}: stale: {key} changed since the cache was prepared; prepare it again")
    return files


def dataset_sources(root: str | Path, *, task: str, protocol: str = "", **speaker_options) -> list[Path]:
    """The audio files of a dataset: a diarization protocol's (``seg``: every split), or a speaker dataset's."""
    if task == "seg":
        from dist_spk.data.protocol import load_protocol

        loaded = load_protocol(root, protocol)
        files = []
        for subset in ("train", "development", "test"):
            try:
                files += [Path(f["audio"]) for f in getattr(loaded, subset)()]
            except (AttributeError, NotImplementedError):  # a protocol without that subset
                continue
        return files
    from dist_spk.data.speakers import load_speakers

    return [u.path for u in load_speakers(root, **speaker_options).utterances]
