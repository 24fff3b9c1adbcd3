"""RTTM and UEM files: parsing with per-line problems, and writing.

Parsed by hand rather than with ``pyannote.database.util.load_rttm``: that loader reads the whole
file with pandas and fails on the first bad line with a pandas error, while ``dist-spk data check``
must report every bad line by number. Training still reads annotations through pyannote.database.

RTTM: ``SPEAKER <uri> <channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>`` (10 fields).
UEM:  ``<uri> <channel> <start> <end>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from dist_spk.data.problems import Problem


@dataclass(frozen=True)
class Turn:
    """One RTTM speaker turn."""

    uri: str
    onset: float
    duration: float
    speaker: str
    line: int = 0

    @property
    def end(self) -> float:
        return self.onset + self.duration


@dataclass(frozen=True)
class Region:
    """One UEM evaluated region."""

    uri: str
    start: float
    end: float
    line: int = 0


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _content_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank, non-comment lines with their 1-based numbers."""
    return [
        (number, line.strip())
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]


def parse_rttm(path: Path, *, uri: str | None = None) -> tuple[list[Turn], list[Problem]]:
    """Parse an RTTM file into turns and the problems of its bad lines.

    Parameters
    ----------
    path
        The RTTM file.
    uri
        When given, every line must carry this uri (one RTTM per recording).
    """
    turns: list[Turn] = []
    problems: list[Problem] = []
    for number, line in _content_lines(path):
        fields = line.split()
        if len(fields) != 10:
            problems.append(Problem(path, f"expected 10 fields, found {len(fields)}: {line!r}", number))
            continue
        if fields[0] != "SPEAKER":
            problems.append(Problem(path, f"first field must be SPEAKER, found {fields[0]!r}", number))
            continue
        onset, duration = _number(fields[3]), _number(fields[4])
        if onset is None or duration is None:
            problems.append(
                Problem(path, f"onset and duration must be numbers, found {fields[3]!r} {fields[4]!r}", number)
            )
            continue
        if onset < 0:
            problems.append(Problem(path, f"negative onset {onset}", number))
            continue
        if duration <= 0:
            problems.append(Problem(path, f"duration must be > 0, found {duration}", number))
            continue
        if uri is not None and fields[1] != uri:
            problems.append(Problem(path, f"uri {fields[1]!r} does not match the file's uri {uri!r}", number))
            continue
        turns.append(Turn(fields[1], onset, duration, fields[7], number))
    return turns, problems


def parse_uem(path: Path, *, uri: str | None = None) -> tuple[list[Region], list[Problem]]:
    """Parse a UEM file into regions and the problems of its bad lines."""
    regions: list[Region] = []
    problems: list[Problem] = []
    for number, line in _content_lines(path):
        fields = line.split()
        if len(fields) != 4:
            problems.append(Problem(path, f"expected 4 fields (uri channel start end), found {len(fields)}", number))
            continue
        start, end = _number(fields[2]), _number(fields[3])
        if start is None or end is None:
            problems.append(Problem(path, f"start and end must be numbers, found {fields[2]!r} {fields[3]!r}", number))
            continue
        if start < 0 or end <= start:
            problems.append(Problem(path, f"region must satisfy 0 <= start < end, found {start} {end}", number))
            continue
        if uri is not None and fields[0] != uri:
            problems.append(Problem(path, f"uri {fields[0]!r} does not match the file's uri {uri!r}", number))
            continue
        regions.append(Region(fields[0], start, end, number))
    return regions, problems


def format_rttm(turns: list[Turn]) -> str:
    """RTTM text for ``turns`` (3 decimals, the convention of pyannote and dscore)."""
    return "".join(
        f"SPEAKER {t.uri} 1 {t.onset:.3f} {t.duration:.3f} <NA> <NA> {t.speaker} <NA> <NA>\n" for t in turns
    )


def format_uem(regions: list[Region]) -> str:
    """UEM text for ``regions``."""
    return "".join(f"{r.uri} 1 {r.start:.3f} {r.end:.3f}\n" for r in regions)
