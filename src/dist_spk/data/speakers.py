"""Speaker-labelled utterances for the speaker encoder, from four kinds of dataset.

- VoxCeleb layout: ``ROOT/{speaker}/{session}/{utt}.wav``; keys are paths relative to ROOT.
- Kaldi: ``ROOT/wav.scp`` + ``ROOT/utt2spk`` (+ optional ``ROOT/segments``); keys are utterance ids.
- CSV: a file with a header ``path,speaker[,start,end]``; relative paths resolve against its folder.
- Diarization (seed layout): the non-overlapped stretches of each speaker turn, at least
  ``min_seconds`` long, so one dataset feeds both tasks.

Trial lists name utterances by key. Training uses every speaker absent from the trial list (the
VoxCeleb1 convention); with no trial list, a balanced one is generated from held-out speakers.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dist_spk.data.audio import AUDIO_EXTENSIONS, AudioError, probe
from dist_spk.data.layout import SeedLayout, is_seed_layout
from dist_spk.data.problems import Problem
from dist_spk.data.rttm import Turn, parse_rttm, parse_uem
from dist_spk.data.trials import Trial, balanced_trials, parse_trials
from dist_spk.errors import DataError

FORMATS = ("voxceleb", "kaldi", "csv", "diarization")


@dataclass(frozen=True)
class Utterance:
    """One speaker-labelled stretch of audio; ``end`` None means to the end of the file."""

    key: str
    path: Path
    speaker: str
    start: float = 0.0
    end: float | None = None

    @property
    def duration(self) -> float | None:
        return None if self.end is None else self.end - self.start


@dataclass
class SpeakerManifest:
    """The utterances of a speaker dataset and the problems met while listing them."""

    root: Path
    format: str
    utterances: list[Utterance] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def speakers(self) -> list[str]:
        return sorted({u.speaker for u in self.utterances})

    def by_key(self) -> dict[str, Utterance]:
        return {u.key: u for u in self.utterances}

    def by_speaker(self) -> dict[str, list[Utterance]]:
        groups: dict[str, list[Utterance]] = defaultdict(list)
        for u in self.utterances:
            groups[u.speaker].append(u)
        return dict(groups)


def detect_format(root: Path) -> str:
    """Guess the dataset format from what ``root`` holds."""
    if root.is_file() and root.suffix.lower() == ".csv":
        return "csv"
    if (root / "wav.scp").is_file():
        return "kaldi"
    if is_seed_layout(root):
        return "diarization"
    if root.is_dir():
        return "voxceleb"
    raise DataError(f"{root}: no such dataset (a folder, a Kaldi folder with wav.scp, or a .csv file)")


def _voxceleb(root: Path) -> SpeakerManifest:
    manifest = SpeakerManifest(root, "voxceleb")
    for path in sorted(root.glob("*/*/*")):
        if path.suffix.lower() in AUDIO_EXTENSIONS and path.is_file():
            relative = path.relative_to(root)
            manifest.utterances.append(Utterance(relative.as_posix(), path, relative.parts[0]))
    if not manifest.utterances:
        manifest.problems.append(Problem(root, "no audio found in the VoxCeleb layout {speaker}/{session}/{utt}.wav"))
    return manifest


def _kaldi_table(path: Path, fields: int, manifest: SpeakerManifest) -> dict[str, list[str]]:
    table: dict[str, list[str]] = {}
    text = _decoded_lines(path, manifest)
    for number, line in enumerate((text or "").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=fields - 1)
        if len(parts) != fields:
            manifest.problems.append(Problem(path, f"expected {fields} fields, found {len(parts)}", number))
        elif parts[0] in table:
            manifest.problems.append(Problem(path, f"duplicate id {parts[0]!r}", number))
        else:
            table[parts[0]] = parts[1:] + [str(number)]
    return table


def _kaldi(root: Path) -> SpeakerManifest:
    manifest = SpeakerManifest(root, "kaldi")
    for name in ("wav.scp", "utt2spk"):
        if not (root / name).is_file():
            manifest.problems.append(Problem(root / name, "missing: a Kaldi folder needs wav.scp and utt2spk"))
    if manifest.problems:
        return manifest
    wavs = _kaldi_table(root / "wav.scp", 2, manifest)
    speakers = _kaldi_table(root / "utt2spk", 2, manifest)
    segments = _kaldi_table(root / "segments", 4, manifest) if (root / "segments").is_file() else None
    for utt, (speaker, line) in speakers.items():
        recording, start, end = utt, 0.0, None
        if segments is not None:
            if utt not in segments:
                manifest.problems.append(Problem(root / "utt2spk", f"utterance {utt!r} is not in segments", int(line)))
                continue
            recording, start_text, end_text, segment_line = segments[utt]
            # Kaldi's end -1: to the end of the recording
            start, end, problem = parse_times(start_text, None if end_text.strip() == "-1" else end_text)
            if problem:
                manifest.problems.append(Problem(root / "segments", f"{utt!r}: {problem}", int(segment_line)))
                continue
        if recording not in wavs:
            manifest.problems.append(Problem(root / "wav.scp", f"no entry for {recording!r} (utterance {utt!r})"))
            continue
        location, scp_line = wavs[recording]
        if location.rstrip().endswith("|"):
            manifest.problems.append(Problem(root / "wav.scp", "piped commands are not supported; extract the audio "
                                             "to files first", int(scp_line)))
            continue
        path = Path(location.strip())
        manifest.utterances.append(Utterance(utt, path if path.is_absolute() else root / path, speaker, start, end))
    return manifest


def parse_times(start_text: str | None, end_text: str | None) -> tuple[float, float | None, str | None]:
    """(start, end or None for "to the end of the file", problem or None) from a segment's two time fields: finite
    numbers, start >= 0, end after start."""
    import math

    try:
        start = float(start_text) if start_text not in (None, "") else 0.0
        end = float(end_text) if end_text not in (None, "") else None
    except ValueError:
        return 0.0, None, f"times must be numbers, got start {start_text!r}, end {end_text!r}"
    if not math.isfinite(start) or (end is not None and not math.isfinite(end)):
        return 0.0, None, f"times must be finite numbers, got start {start_text!r}, end {end_text!r}"
    if start < 0:
        return 0.0, None, f"start {start:g} is negative"
    if end is not None and end <= start:
        return 0.0, None, f"end {end:g} must be after start {start:g}"
    return start, end, None


def _decoded_lines(path: Path, manifest: SpeakerManifest) -> str | None:
    """The file's text (UTF-8, a byte-order mark dropped), or None with one problem naming the first bad line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        manifest.problems.append(Problem(path, f"not UTF-8 text (byte {data[err.start]:#x}); save it as UTF-8 "
                                         "(e.g. iconv -f latin1 -t utf-8)", line))
        return None


def _csv(path: Path) -> SpeakerManifest:
    import io

    manifest = SpeakerManifest(path.parent, "csv")
    text = _decoded_lines(path, manifest)
    if text is None:
        return manifest
    with io.StringIO(text, newline="") as handle:
        reader = csv.DictReader(handle)
        columns = set(reader.fieldnames or [])
        if not {"path", "speaker"} <= columns:
            manifest.problems.append(Problem(path, f"header must have path,speaker[,start,end]; found "
                                             f"{','.join(reader.fieldnames or []) or 'nothing'}", 1))
            return manifest
        for number, row in enumerate(reader, start=2):
            start, end, problem = parse_times(row.get("start"), row.get("end"))
            if problem:
                manifest.problems.append(Problem(path, problem, number))
                continue
            if not row["path"] or not row["speaker"]:
                manifest.problems.append(Problem(path, "empty path or speaker", number))
                continue
            audio = Path(row["path"])
            key = row["path"] if end is None and start == 0.0 else f"{row['path']}@{start:.3f}-{end or 0:.3f}"
            manifest.utterances.append(
                Utterance(key, audio if audio.is_absolute() else path.parent / audio, row["speaker"], start, end)
            )
    return manifest


def solo_stretches(turns: Iterable[Turn]) -> list[tuple[str, float, float]]:
    """``(speaker, start, end)`` for every maximal stretch where exactly one speaker talks."""
    turns = list(turns)
    boundaries = sorted({t.onset for t in turns} | {t.end for t in turns})
    stretches: list[tuple[str, float, float]] = []
    for start, end in zip(boundaries, boundaries[1:], strict=False):
        middle = (start + end) / 2
        active = {t.speaker for t in turns if t.onset <= middle < t.end}
        if len(active) != 1:
            continue
        (speaker,) = active
        if stretches and stretches[-1][0] == speaker and abs(stretches[-1][2] - start) < 1e-9:
            stretches[-1] = (speaker, stretches[-1][1], end)
        else:
            stretches.append((speaker, start, end))
    return stretches


def _diarization(root: Path, *, split: str, min_seconds: float, speaker_scope: str) -> SpeakerManifest:
    layout = SeedLayout(root)
    manifest = SpeakerManifest(layout.root, "diarization")
    if not layout.has_split(split):
        manifest.problems.append(Problem(layout.list_path(split), f"missing: no {split} split"))
        return manifest
    for file in layout.files(split):
        if file.audio is None or not file.rttm.is_file():
            manifest.problems.append(Problem(file.rttm, f"uri {file.uri!r} lacks audio or RTTM "
                                             "(run dist-spk data check)"))
            continue
        turns, problems = parse_rttm(file.rttm, uri=file.uri)
        manifest.problems += problems
        regions = parse_uem(file.uem, uri=file.uri)[0] if file.uem else None
        for speaker, start, end in solo_stretches(turns):
            if regions is not None:  # keep what lies inside the evaluated regions
                spans = [(max(start, r.start), min(end, r.end)) for r in regions if r.end > start and r.start < end]
            else:
                spans = [(start, end)]
            for s, e in spans:
                if e - s >= min_seconds:
                    label = speaker if speaker_scope == "global" else f"{file.uri}/{speaker}"
                    key = f"{split}/{file.uri}/{speaker}/{s:.3f}-{e:.3f}"
                    manifest.utterances.append(Utterance(key, file.audio, label, s, e))
    if not manifest.utterances and not manifest.problems:
        manifest.problems.append(Problem(layout.list_path(split), f"no single-speaker stretch of at least "
                                         f"{min_seconds}s in the {split} split"))
    return manifest


def load_speakers(
    root: str | Path,
    *,
    format: str = "auto",
    split: str = "train",
    min_seconds: float = 1.5,
    speaker_scope: str = "file",
) -> SpeakerManifest:
    """List the utterances of a speaker dataset.

    Parameters
    ----------
    root
        Dataset folder, or a CSV file.
    format
        ``auto``, ``voxceleb``, ``kaldi``, ``csv`` or ``diarization``.
    split, min_seconds, speaker_scope
        Diarization format only: which split's RTTMs, the shortest stretch kept, and whether speaker
        labels are unique across files (``global``) or only within a file (``file``).
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DataError(f"{root}: no such file or folder")
    format = detect_format(root) if format == "auto" else format
    if format == "voxceleb":
        manifest = _voxceleb(root)
    elif format == "kaldi":
        manifest = _kaldi(root)
    elif format == "csv":
        manifest = _csv(root)
    elif format == "diarization":
        manifest = _diarization(root, split=split, min_seconds=min_seconds, speaker_scope=speaker_scope)
    else:
        raise DataError(f"unknown speaker dataset format {format!r}; valid: auto, {', '.join(FORMATS)}")
    spaced = [u.key for u in manifest.utterances if any(c.isspace() for c in u.key)]
    if spaced:  # VoxCeleb-format trial lists separate fields by white space: such a key's trials would be lost
        manifest.problems.append(Problem(root, f"{len(spaced)} utterance key(s) contain white space, which "
                                         f"VoxCeleb-format trial lists cannot hold (first: {spaced[0]!r}); rename "
                                         "them (e.g. spaces to underscores)"))
    return manifest


@dataclass
class SpeakerCheck:
    """What ``check_speakers`` found."""

    manifest: SpeakerManifest
    trials: list[Trial]
    problems: list[Problem]
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


def _check_audio(utterance: Utterance, durations: dict[Path, float]) -> list[Problem]:
    if utterance.path not in durations:
        return []  # reported once per file by the caller
    duration = durations[utterance.path]
    if utterance.end is not None and utterance.end > duration + 1e-3:
        return [Problem(utterance.path, f"utterance {utterance.key!r} ends at {utterance.end:.3f}s, past the end "
                        f"of the audio ({duration:.3f}s)")]
    return []


def check_speakers(manifest: SpeakerManifest, *, trials_path: Path | None = None, progress: bool = True
                   ) -> SpeakerCheck:
    """Decode every audio file, check segment bounds, and check the trial list against the manifest."""
    problems = list(manifest.problems)
    paths = sorted({u.path for u in manifest.utterances})
    durations: dict[Path, float] = {}

    def probe_one(path: Path) -> Problem | None:
        try:
            durations[path] = probe(path).duration
        except AudioError as err:
            return Problem(path, str(err))
        return None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        problems += [p for p in tqdm(pool.map(probe_one, paths), total=len(paths), desc="checking audio",
                                     unit="file", leave=False, disable=not progress or None) if p]
    for utterance in manifest.utterances:
        problems += _check_audio(utterance, durations)
    for speaker, utterances in manifest.by_speaker().items():
        if len(utterances) < 2:
            problems.append(Problem(manifest.root, f"speaker {speaker!r} has a single utterance", 0, "warning"))
    trials: list[Trial] = []
    if trials_path is not None:
        if not trials_path.is_file():
            problems.append(Problem(trials_path, "trial list not found"))
        else:
            trials, bad = parse_trials(trials_path)
            problems += bad
            known = manifest.by_key()
            for trial in trials:
                for key in (trial.enroll, trial.test):
                    if key not in known:
                        problems.append(Problem(trials_path, f"unknown utterance {key!r}: not in the dataset",
                                                trial.line))
                if trial.enroll in known and trial.test in known:
                    same = known[trial.enroll].speaker == known[trial.test].speaker
                    if same != trial.target:
                        problems.append(Problem(trials_path, f"label {int(trial.target)} contradicts the speakers "
                                                f"of {trial.enroll!r} and {trial.test!r}", trial.line, "warning"))
    seconds = sum((u.duration if u.duration is not None else durations.get(u.path, 0.0)) for u in manifest.utterances)
    return SpeakerCheck(manifest, trials, problems, seconds)


def heldout_split(manifest: SpeakerManifest, *, fraction: float = 0.1, minimum: int = 2, seed: int = 0
                  ) -> tuple[list[str], list[str]]:
    """Split speakers into (training, held-out), deterministically for a seed."""
    speakers = manifest.speakers()
    count = max(minimum, round(fraction * len(speakers)))
    if len(speakers) < count + 1:
        raise DataError(f"{manifest.root}: {len(speakers)} speakers cannot spare {count} for held-out trials")
    order = np.random.default_rng(seed).permutation(len(speakers))
    heldout = sorted(speakers[i] for i in order[:count])
    return sorted(set(speakers) - set(heldout)), heldout


def generate_trials(manifest: SpeakerManifest, heldout: list[str], *, seed: int = 0, max_per_class: int = 20000
                    ) -> list[Trial]:
    """A balanced trial list over the held-out speakers' utterances."""
    groups = manifest.by_speaker()
    return balanced_trials({s: [u.key for u in groups[s]] for s in heldout}, rng=np.random.default_rng(seed),
                           max_per_class=max_per_class)
