"""``dist-spk diarize``: a pipeline folder (ours, exported by ``evaluate pipeline --export``) or a hub pipeline
(``pyannote/speaker-diarization-community-1``) on new audio, one RTTM per file.

The pipeline is loaded by pyannote's own ``Pipeline.from_pretrained``, so the RTTMs are what a user who loads the
folder in Python gets. Every model file of a local folder is first read with ``weights_only=True``: pyannote
unpickles them with ``weights_only=False``, and a pickle can run code when loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dist_spk.data.audio import AUDIO_EXTENSIONS
from dist_spk.errors import DataError, DistSpkError


def collect_audio(inputs: list[Path]) -> list[Path]:
    """Audio files from ``inputs``: files, folders (searched recursively for audio files, hidden entries skipped)
    and text files listing one path per line (relative to the list's folder; blank lines and ``#`` comments
    skipped). Each file once, in the order given."""
    found: list[Path] = []
    for item in inputs:
        if not item.exists():
            raise DataError(f"{item}: no such file or folder")
        if item.is_dir():
            found += sorted(p for p in item.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()
                            and not any(part.startswith(".") for part in p.relative_to(item).parts))
        elif item.suffix.lower() in AUDIO_EXTENSIONS:
            found.append(item)
        else:
            found += _listed(item)
    unique = list(dict.fromkeys(p.resolve() for p in found))
    if not unique:
        raise DataError(f"no audio files in {', '.join(map(str, inputs))} (looked for {', '.join(AUDIO_EXTENSIONS)})")
    return unique


def _listed(path: Path) -> list[Path]:
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path}: neither audio ({', '.join(AUDIO_EXTENSIONS)}) nor a UTF-8 text list of audio "
                        "paths") from None
    listed = []
    for number, line in enumerate(lines, 1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        audio = Path(entry) if Path(entry).is_absolute() else path.parent / entry
        if not audio.is_file():
            raise DataError(f"{path}:{number}: {entry}: no such audio file")
        listed.append(audio)
    return listed


def by_uri(files: list[Path]) -> dict[str, Path]:
    """``{uri: file}`` with uri the file's stem (the RTTM's name); two files with one stem is an error naming both."""
    uris: dict[str, Path] = {}
    for path in files:
        if path.stem in uris:
            raise DataError(f"two inputs have the uri {path.stem!r} (the RTTM name): {uris[path.stem]} and {path}; "
                            "rename one")
        uris[path.stem] = path
    return uris


def check_readable(files: dict[str, Path]) -> dict[str, float]:
    """Each file's duration in seconds, from its header (torchcodec, as pyannote reads it); an unreadable file is
    one clear error naming it, before any model loads."""
    from pyannote.audio.core.io import Audio

    audio, durations, bad = Audio(), {}, []
    for uri, path in files.items():
        try:
            durations[uri] = float(audio.get_duration(str(path)))
        except Exception as err:  # torchcodec / FFmpeg errors of every kind
            bad.append(f"{path}: unreadable audio ({type(err).__name__}: {str(err).splitlines()[0][:160]})")
    if bad:
        raise DataError("\n".join(bad))
    return durations


def load_pipeline(spec: str, *, device: str = "cpu", token_env: str = "HF_TOKEN"):
    """A pyannote pipeline from a local folder (or its ``config.yaml``) or a hub id, on ``device``."""
    import warnings

    import torch
    from pyannote.audio import Pipeline

    from dist_spk.hub import is_hub_id
    from dist_spk.pipeline.model_folder import MODEL_FILE, check_model_file

    path = Path(spec).expanduser()
    if path.exists():
        folder = path.parent if path.is_file() else path
        if not (folder / "config.yaml").is_file():
            raise DistSpkError(f"--pipeline {spec}: no config.yaml (export one with dist-spk evaluate pipeline "
                               "--export DIR)")
        for model_file in sorted(folder.rglob(MODEL_FILE)):
            check_model_file(model_file)
        source, token = str(path), None
    elif is_hub_id(spec):
        source, token = spec, os.environ.get(token_env) or None
    else:
        raise DistSpkError(f"--pipeline {spec!r}: neither a pipeline folder nor a hub id like "
                           "'pyannote/speaker-diarization-community-1'")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pipeline = Pipeline.from_pretrained(source, token=token)
    except Exception as err:  # hub, gating, a folder pyannote cannot read, a missing dependency
        hint = "" if path.exists() or token else f" ({token_env} is not set; gated pipelines need a token)"
        raise DistSpkError(f"--pipeline {spec}: pyannote could not load it: {type(err).__name__}: "
                           f"{str(err).splitlines()[0] if str(err) else ''}{hint}") from None
    if pipeline is None:
        raise DistSpkError(f"--pipeline {spec}: the hub has no pipeline there")
    pipeline.to(torch.device(device))
    return pipeline


@dataclass(frozen=True)
class Diarized:
    uri: str
    rttm: Path
    speakers: int
    seconds: float
    skipped: bool = False


def diarize_files(pipeline, files: dict[str, Path], out: Path, *, num_speakers: int | None = None,
                  min_speakers: int | None = None, max_speakers: int | None = None, overwrite: bool = False,
                  show_progress: bool = True) -> list[Diarized]:
    """Diarize each file into ``out/<uri>.rttm`` (written through a temporary file and a rename); a file whose RTTM
    exists is skipped unless ``overwrite``."""
    from pyannote.core import Annotation
    from tqdm.auto import tqdm

    from dist_spk.pipeline.evaluate import with_waveform
    from dist_spk.runs.files import replacing

    out.mkdir(parents=True, exist_ok=True)
    done = []
    for uri, path in tqdm(files.items(), desc="diarizing", unit="file", disable=None if show_progress else True):
        rttm = out / f"{uri}.rttm"
        if rttm.exists() and not overwrite:
            done.append(Diarized(uri, rttm, 0, 0.0, skipped=True))
            continue
        output = pipeline(with_waveform({"uri": uri, "audio": str(path)}), num_speakers=num_speakers,
                          min_speakers=min_speakers, max_speakers=max_speakers)
        annotation: Annotation = getattr(output, "speaker_diarization", output)  # pyannote 4, or legacy
        with replacing(rttm) as partial, partial.open("w") as handle:
            annotation.write_rttm(handle)
        done.append(Diarized(uri, rttm, len(annotation.labels()), annotation.get_timeline().support().duration()))
    return done
