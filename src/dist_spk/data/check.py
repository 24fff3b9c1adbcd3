"""``dist-spk data check``: validate a seed-layout diarization dataset before any training.

Every problem is collected (never only the first), each naming its file and, for RTTM/UEM, its
line. Training commands run the same check and refuse to start on any error.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from dist_spk.data.audio import AudioError, AudioInfo, probe
from dist_spk.data.layout import PYANNOTE_SUBSET, REQUIRED_SPLITS, SPLITS, SeedFile, SeedLayout
from dist_spk.data.problems import Problem
from dist_spk.data.rttm import Region, Turn, parse_rttm, parse_uem

# Times in RTTM/UEM are written with 3 decimals: allow that much rounding past the end of the audio.
END_TOLERANCE = 1e-3


@dataclass
class SplitStats:
    """Per-split summary of a dataset."""

    files: int = 0
    hours: float = 0.0
    speech_hours: float = 0.0
    overlap_ratio: float = 0.0  # overlapped speech / speech
    speakers: int = 0  # distinct labels in the split
    speakers_per_file: list[int] = field(default_factory=list)
    sample_rates: list[int] = field(default_factory=list)
    channels: list[int] = field(default_factory=list)

    def as_row(self) -> dict[str, object]:
        per_file = self.speakers_per_file or [0]
        return {
            "files": self.files,
            "hours": round(self.hours, 3),
            "speech_hours": round(self.speech_hours, 3),
            "overlap_ratio": round(self.overlap_ratio, 4),
            "speakers": self.speakers,
            "speakers_per_file": f"{min(per_file)}-{max(per_file)} ({np.mean(per_file):.1f})",
            "sample_rates": ",".join(str(r) for r in sorted(set(self.sample_rates))),
            "channels": ",".join(str(c) for c in sorted(set(self.channels))),
        }


@dataclass
class CheckReport:
    """What ``check_diarization`` found: problems (errors and warnings) and per-split stats."""

    root: Path
    problems: list[Problem] = field(default_factory=list)
    stats: dict[str, SplitStats] = field(default_factory=dict)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


def speech_and_overlap(turns: Iterable[Turn]) -> tuple[float, float]:
    """Seconds with at least one, and at least two, speakers active (a sweep over turn boundaries)."""
    events = sorted(
        [(t.onset, +1) for t in turns] + [(t.end, -1) for t in turns],
        key=lambda e: (e[0], e[1]),  # at equal times close before open: touching turns do not overlap
    )
    speech = overlap = 0.0
    active = 0
    previous = 0.0
    for time, delta in events:
        if active >= 1:
            speech += time - previous
        if active >= 2:
            overlap += time - previous
        active += delta
        previous = time
    return speech, overlap


def _check_lists(layout: SeedLayout, problems: list[Problem]) -> dict[str, list[str]]:
    """Read every split list; report missing/empty lists, duplicates and uris in two splits."""
    uris: dict[str, list[str]] = {}
    first_seen: dict[str, tuple[str, int]] = {}
    for split in SPLITS:
        path = layout.list_path(split)
        if not path.is_file():
            if split in REQUIRED_SPLITS:
                problems.append(Problem(path, f"missing: the {split} list is required"))
            else:
                problems.append(Problem(path, f"missing: no {split} split, evaluation will need one", 0, "warning"))
            continue
        entries = layout.uris(split)
        if not entries:
            problems.append(Problem(path, "empty list: no uri"))
        uris[split] = []
        for number, uri in entries:
            if len(uri.split()) != 1 or "/" in uri:
                problems.append(Problem(path, f"a uri is one word without '/', found {uri!r}", number))
                continue
            if uri in first_seen:
                other_split, other_line = first_seen[uri]
                where = f"line {other_line}" if other_split == split else f"{other_split}.txt line {other_line}"
                problems.append(Problem(path, f"uri {uri!r} already listed at {where}", number))
                continue
            first_seen[uri] = (split, number)
            uris[split].append(uri)
    return uris


def _check_against_audio(audio: Path, info: AudioInfo, turns: list[Turn], regions: list[Region],
                         rttm: Path, uem: Path | None) -> list[Problem]:
    """Turns and regions must lie inside the audio (pyannote fails mid-training otherwise)."""
    limit = info.duration + END_TOLERANCE
    problems = [
        Problem(rttm, f"turn ends at {t.end:.3f}s, past the end of the audio ({info.duration:.3f}s)", t.line)
        for t in turns if t.end > limit
    ]
    problems += [
        Problem(uem or rttm, f"region ends at {r.end:.3f}s, past the end of the audio ({info.duration:.3f}s)", r.line)
        for r in regions if r.end > limit
    ]
    if info.sample_rate < 16000:
        problems.append(Problem(audio, f"sample rate {info.sample_rate} Hz is below the model's 16 kHz", 0, "warning"))
    return problems


def _probe(audio: Path, problems: list[Problem]) -> AudioInfo | None:
    try:
        return probe(audio)
    except AudioError as err:
        problems.append(Problem(audio, str(err)))
        return None


def _check_file(file: SeedFile, layout: SeedLayout) -> tuple[list[Problem], AudioInfo | None, list[Turn]]:
    """All problems of one seed-layout recording: audio, RTTM and UEM, and their agreement."""
    problems: list[Problem] = []
    info = None
    if file.audio is None:
        folder = layout.root / file.split / "wav"
        problems.append(Problem(folder / f"{file.uri}.wav", f"missing audio for uri {file.uri!r} (looked for "
                                f"{file.uri}.wav/.flac/... in {folder})"))
    else:
        info = _probe(file.audio, problems)
    turns: list[Turn] = []
    if not file.rttm.is_file():
        problems.append(Problem(file.rttm, f"missing RTTM for uri {file.uri!r}"))
    else:
        turns, bad = parse_rttm(file.rttm, uri=file.uri)
        problems += bad
        if not turns and not bad:
            problems.append(Problem(file.rttm, "no speech turns: the file only teaches silence", 0, "warning"))
    regions: list[Region] = []
    if file.uem is not None:
        regions, bad = parse_uem(file.uem, uri=file.uri)
        problems += bad
        if not regions and not bad:
            problems.append(Problem(file.uem, "no region: the file would never be used"))
    if info is not None:
        problems += _check_against_audio(file.audio, info, turns, regions, file.rttm, file.uem)
    return problems, info, turns


def _summarise(report: CheckReport, results: list[tuple[str, list[Problem], AudioInfo | None, list[Turn]]]) -> None:
    """Fold per-file results into the report's problems and per-split stats."""
    labels: dict[str, set[str]] = defaultdict(set)
    overlap_seconds: dict[str, float] = defaultdict(float)
    for split, problems, info, turns in results:
        report.problems += problems
        stats = report.stats.setdefault(split, SplitStats())
        stats.files += 1
        speech, overlap = speech_and_overlap(turns)
        stats.speech_hours += speech / 3600
        overlap_seconds[split] += overlap
        labels[split].update(t.speaker for t in turns)
        stats.speakers_per_file.append(len({t.speaker for t in turns}))
        if info is not None:
            stats.hours += info.duration / 3600
            stats.sample_rates.append(info.sample_rate)
            stats.channels.append(info.channels)
    for split, stats in report.stats.items():
        stats.speakers = len(labels[split])
        speech_seconds = stats.speech_hours * 3600
        stats.overlap_ratio = overlap_seconds[split] / speech_seconds if speech_seconds else 0.0


def _map(function, items: list, *, progress: bool, threads: int | None) -> list:
    """``function`` over ``items`` on a thread pool (decoding releases the GIL), with a progress bar."""
    with ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 1) as pool:
        return list(tqdm(pool.map(function, items), total=len(items), desc="checking audio", unit="file",
                         disable=not progress or None, leave=False))


def check_diarization(root: str | Path, *, progress: bool = True, threads: int | None = None) -> CheckReport:
    """Validate a seed-layout dataset and compute per-split statistics.

    Parameters
    ----------
    root
        The dataset folder.
    progress
        Show a progress bar while audio is decoded (on a terminal only).
    threads
        Files decoded at once; default: the machine's CPU count.

    Returns
    -------
    CheckReport
        ``report.ok`` is False when any error was found; ``report.problems`` lists them all.
    """
    layout = SeedLayout(root)
    report = CheckReport(layout.root)
    if not layout.root.is_dir():
        report.problems.append(Problem(layout.root, "not a folder"))
        return report
    uris = _check_lists(layout, report.problems)
    files = [layout.file(split, uri) for split, split_uris in uris.items() for uri in split_uris]
    results = _map(lambda f: _check_file(f, layout), files, progress=progress, threads=threads)
    _summarise(report, [(f.split, *result) for f, result in zip(files, results, strict=True)])
    return report


def check_protocol(protocol, *, progress: bool = True, threads: int | None = None) -> CheckReport:
    """Validate every file of a pyannote.database protocol (e.g. from a user's database.yml).

    Problems name ``{protocol}/{subset}/{uri}`` (the protocol hides its RTTM/UEM paths) or the audio.
    """
    report = CheckReport(Path(protocol.name))
    entries = []
    for split, subset in PYANNOTE_SUBSET.items():
        try:
            entries += [(split, file) for file in getattr(protocol, subset)()]
        except NotImplementedError:
            severity = "error" if split in REQUIRED_SPLITS else "warning"
            report.problems.append(Problem(report.root / subset, f"the protocol has no {subset} subset", 0, severity))
        except Exception as err:  # pyannote.database loaders raise what their files make them raise
            report.problems.append(Problem(report.root / subset, f"cannot list files ({err})"))

    def check(entry: tuple[str, dict]) -> tuple[list[Problem], AudioInfo | None, list[Turn]]:
        split, file = entry
        where = report.root / PYANNOTE_SUBSET[split] / file["uri"]
        try:
            audio, annotation = Path(file["audio"]), file["annotation"]
            annotated = file.get("annotated")
        except Exception as err:  # a missing RTTM/UEM surfaces here, from pyannote.database's lazy loaders
            return [Problem(where, f"cannot load ({err})")], None, []
        turns = [Turn(file["uri"], seg.start, seg.duration, str(label))
                 for seg, _, label in annotation.itertracks(yield_label=True)]
        regions = [Region(file["uri"], seg.start, seg.end) for seg in annotated] if annotated is not None else []
        problems: list[Problem] = []
        info = _probe(audio, problems)
        if info is not None:
            problems += _check_against_audio(audio, info, turns, regions, where, None)
        return problems, info, turns

    results = _map(check, entries, progress=progress, threads=threads)
    _summarise(report, [(split, *result) for (split, _), result in zip(entries, results, strict=True)])
    return report
