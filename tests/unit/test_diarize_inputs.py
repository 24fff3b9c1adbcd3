"""``dist-spk diarize``'s inputs: files, folders and lists; one uri per file; ``--device``."""

from __future__ import annotations

import pytest

from dist_spk.cuda import resolve_device
from dist_spk.errors import DistSpkError
from dist_spk.pipeline.apply import by_uri, collect_audio
from tests.conftest import write_tone


def test_files_folders_and_lists_give_each_file_once(tmp_path):
    for name in ("a.wav", "sub/b.flac", ".hidden/c.wav", "notes.txt"):
        path = tmp_path / "audio" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tone(path, 0.5) if name.endswith(".wav") else path.write_bytes(b"x")
    (tmp_path / "audio" / "sub" / "b.flac").unlink()
    write_tone(tmp_path / "audio" / "sub" / "b.wav", 0.5)
    listing = tmp_path / "list.txt"
    listing.write_text("\ufeff# a comment\naudio/a.wav\n\n" + str(tmp_path / "audio" / "sub" / "b.wav") + "\n")
    found = collect_audio([tmp_path / "audio", listing, tmp_path / "audio" / "a.wav"])
    assert found == [(tmp_path / "audio" / "a.wav").resolve(), (tmp_path / "audio" / "sub" / "b.wav").resolve()]
    assert list(by_uri(found)) == ["a", "b"]


def test_bad_inputs_name_the_file_and_line(tmp_path):
    listing = tmp_path / "list.txt"
    listing.write_text("missing.wav\n")
    with pytest.raises(DistSpkError, match=r"list.txt:1: missing.wav: no such audio file"):
        collect_audio([listing])
    with pytest.raises(DistSpkError, match="no such file or folder"):
        collect_audio([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DistSpkError, match="no audio files"):
        collect_audio([tmp_path / "empty"])
    with pytest.raises(DistSpkError, match="uri 'x'"):
        by_uri([tmp_path / "one" / "x.wav", tmp_path / "two" / "x.flac"])


def test_device_names():
    import torch

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("CPU") == "cpu"
    with pytest.raises(DistSpkError, match="expected auto, cpu, cuda"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(DistSpkError, match="CUDA is not usable"):
            resolve_device("cuda:0")
