"""pyannote.database protocols: from the seed layout directly, or from a user's database.yml.

The seed layout becomes a :class:`pyannote.database.protocol.SpeakerDiarizationProtocol` in Python,
with no YAML to write: files carry ``audio``, ``annotation`` (from the RTTM) and ``annotated`` (the
UEM, or the whole file when the UEM is missing). ``write_database_yaml`` writes the equivalent
database.yml for users who want one; per-uri templates when every UEM exists, otherwise a merged UEM
per split next to the YAML (pyannote.database's templates cannot express "optional").

This module imports pyannote; ``import dist_spk`` does not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import yaml
from pyannote.core import Annotation, Segment, Timeline
from pyannote.database import FileFinder, ProtocolFile
from pyannote.database.protocol import SpeakerDiarizationProtocol
from pyannote.database.registry import Registry

from dist_spk.data.audio import duration_of
from dist_spk.data.layout import PYANNOTE_SUBSET, SeedFile, SeedLayout, is_seed_layout
from dist_spk.data.rttm import Region, format_uem, parse_rttm, parse_uem
from dist_spk.errors import DataError

PROTOCOL_NAME = "seed"


def database_name(root: str | Path) -> str:
    """A pyannote database name from a folder name: letters, digits and underscores."""
    name = re.sub(r"\W+", "_", Path(root).resolve().name).strip("_")
    return name or "Dataset"


def audio_duration(path: Path) -> float:
    """Duration from the audio header (libsndfile, else torchcodec's metadata)."""
    return duration_of(path)


def _annotation(file: SeedFile) -> Annotation:
    turns, problems = parse_rttm(file.rttm, uri=file.uri)
    if problems:
        raise DataError(f"{problems[0]} (run 'dist-spk data check' for the full list)")
    annotation = Annotation(uri=file.uri)
    for index, turn in enumerate(turns):
        annotation[Segment(turn.onset, turn.end), index] = turn.speaker
    return annotation


def _annotated(file: SeedFile) -> Timeline:
    if file.uem is None:
        regions = [Region(file.uri, 0.0, audio_duration(file.audio))]
    else:
        regions, problems = parse_uem(file.uem, uri=file.uri)
        if problems:
            raise DataError(f"{problems[0]} (run 'dist-spk data check' for the full list)")
    return Timeline([Segment(r.start, r.end) for r in regions], uri=file.uri).support()


class SeedProtocol(SpeakerDiarizationProtocol):
    """The seed layout at ``root`` as a pyannote.database speaker-diarization protocol."""

    def __init__(self, root: str | Path, *, database: str | None = None):
        super().__init__()
        self.layout = SeedLayout(root)
        self.database = database or database_name(self.layout.root)
        self.name = f"{self.database}.SpeakerDiarization.{PROTOCOL_NAME}"

    def _iter(self, split: str) -> Iterator[dict]:
        if not self.layout.has_split(split):
            raise NotImplementedError(f"{self.layout.list_path(split)} does not exist")
        for file in self.layout.files(split):
            if file.audio is None:
                raise DataError(f"no audio for uri {file.uri!r} under {self.layout.root / split / 'wav'}")
            yield {
                "uri": file.uri,
                "database": self.database,
                "subset": PYANNOTE_SUBSET[split],
                "scope": "file",  # speaker labels are only known to be consistent within a file
                "audio": str(file.audio),
                "annotation": _annotation(file),
                "annotated": _annotated(file),
            }

    def train_iter(self) -> Iterator[dict]:
        return self._iter("train")

    def development_iter(self) -> Iterator[dict]:
        return self._iter("dev")

    def test_iter(self) -> Iterator[dict]:
        return self._iter("test")


def yaml_protocol(database_yml: str | Path, protocol: str):
    """A protocol from a pyannote.database YAML file, e.g. ``MyDB.SpeakerDiarization.default``."""
    path = Path(database_yml)
    if not path.is_file():
        raise DataError(f"{path}: no such database YAML")
    if not protocol:
        raise DataError(f"{path}: a pyannote.database YAML needs a protocol name, e.g. "
                        "MyDatabase.SpeakerDiarization.default (--protocol / data.protocol)")
    registry = Registry()
    try:
        registry.load_database(str(path))
        return registry.get_protocol(protocol, preprocessors={"audio": FileFinder(registry=registry)})
    except (KeyError, ValueError, FileNotFoundError, TypeError, yaml.YAMLError) as err:
        known = ", ".join(sorted(_protocol_names(registry))) or "none"
        raise DataError(f"{path}: cannot load protocol {protocol!r} ({err}); protocols defined: {known}") from None


def _protocol_names(registry: Registry) -> list[str]:
    names = []
    for database_name in registry.databases:
        database = registry.get_database(database_name)
        for task in database.get_tasks():
            names += [f"{database_name}.{task}.{p}" for p in database.get_protocols(task)]
    return names


def load_protocol(root: str | Path, protocol: str = ""):
    """The protocol behind a dataset argument: a seed-layout folder, or a database.yml + name."""
    path = Path(root)
    if path.is_file() and path.suffix in (".yml", ".yaml"):
        return yaml_protocol(path, protocol)
    if is_seed_layout(path):
        return SeedProtocol(path)
    raise DataError(f"{path}: neither a seed-layout folder (train.txt, dev.txt, ...) nor a pyannote.database YAML")


def protocol_files(protocol, subset: str) -> list[ProtocolFile]:
    """Every file of a subset (``train``, ``development`` or ``test``)."""
    return list(getattr(protocol, subset)())


def write_database_yaml(root: str | Path, out: str | Path, *, name: str | None = None) -> Path:
    """Write a pyannote.database YAML equivalent to the seed layout at ``root``.

    Returns the YAML's path. The protocol is ``{name}.SpeakerDiarization.seed``.
    """
    layout = SeedLayout(root)
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    name = name or database_name(layout.root)
    templates: list[str] = []
    subsets: dict[str, dict[str, str]] = {}
    for split in layout.splits():
        files = layout.files(split)
        missing = [f.uri for f in files if f.audio is None]
        if missing:
            raise DataError(f"no audio for uri {missing[0]!r} in {layout.root / split / 'wav'} "
                            "(run 'dist-spk data check')")
        for suffix in sorted({f.audio.suffix for f in files}):
            templates.append(str(layout.root / split / "wav" / f"{{uri}}{suffix}"))
        entry = {"uri": str(layout.list_path(split)), "annotation": str(layout.root / split / "rttm" / "{uri}.rttm")}
        if all(f.uem is not None for f in files):
            entry["annotated"] = str(layout.root / split / "uem" / "{uri}.uem")
        else:  # some UEMs missing: a merged UEM with whole-file regions for those
            merged = out.with_name(f"{out.stem}.{split}.uem")
            regions = []
            for f in files:
                regions += parse_uem(f.uem, uri=f.uri)[0] if f.uem else [Region(f.uri, 0.0, audio_duration(f.audio))]
            merged.write_text(format_uem(regions))
            entry["annotated"] = str(merged)
        subsets[PYANNOTE_SUBSET[split]] = entry
    document = {
        "Databases": {name: templates},
        "Protocols": {name: {"SpeakerDiarization": {PROTOCOL_NAME: {"scope": "file", **subsets}}}},
    }
    out.write_text(yaml.safe_dump(document, sort_keys=False))
    return out
