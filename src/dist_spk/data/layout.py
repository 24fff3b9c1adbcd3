"""The seed layout of a diarization dataset: one folder per split.

::

    ROOT/train.txt dev.txt test.txt          one uri per line
    ROOT/{split}/wav/{uri}.wav               (or .flac, .ogg, .mp3, ...)
    ROOT/{split}/rttm/{uri}.rttm
    ROOT/{split}/uem/{uri}.uem               optional: the whole file when missing

``train`` and ``dev`` are required; ``test`` is optional (evaluation needs it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dist_spk.data.audio import AUDIO_EXTENSIONS

SPLITS = ("train", "dev", "test")
REQUIRED_SPLITS = ("train", "dev")
# pyannote.database's subset names for our split names
PYANNOTE_SUBSET = {"train": "train", "dev": "development", "test": "test"}


@dataclass(frozen=True)
class SeedFile:
    """One recording of a seed-layout split, with the paths where its files belong."""

    split: str
    uri: str
    audio: Path | None  # None when no audio file with a known extension exists
    rttm: Path
    uem: Path | None  # None when the optional UEM is missing


class SeedLayout:
    """Paths of a seed-layout dataset rooted at ``root``; reading lists, not validating them."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()

    def list_path(self, split: str) -> Path:
        return self.root / f"{split}.txt"

    def has_split(self, split: str) -> bool:
        return self.list_path(split).is_file()

    def splits(self) -> list[str]:
        """The splits whose list file exists, in train/dev/test order."""
        return [split for split in SPLITS if self.has_split(split)]

    def uris(self, split: str) -> list[tuple[int, str]]:
        """``(line number, uri)`` for every non-blank line of the split's list."""
        lines = self.list_path(split).read_text().splitlines()
        return [(number, line.strip()) for number, line in enumerate(lines, start=1) if line.strip()]

    def audio_candidates(self, split: str, uri: str) -> list[Path]:
        return [self.root / split / "wav" / f"{uri}{ext}" for ext in AUDIO_EXTENSIONS]

    def file(self, split: str, uri: str) -> SeedFile:
        audio = next((p for p in self.audio_candidates(split, uri) if p.is_file()), None)
        uem = self.root / split / "uem" / f"{uri}.uem"
        return SeedFile(split, uri, audio, self.root / split / "rttm" / f"{uri}.rttm", uem if uem.is_file() else None)

    def files(self, split: str) -> list[SeedFile]:
        return [self.file(split, uri) for _, uri in self.uris(split)]


def is_seed_layout(root: str | Path) -> bool:
    """Whether ``root`` is a folder holding at least one split list."""
    root = Path(root)
    return root.is_dir() and any((root / f"{split}.txt").is_file() for split in SPLITS)
