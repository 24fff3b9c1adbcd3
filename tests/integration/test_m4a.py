"""Speaker data in m4a (VoxCeleb2 ships as AAC in m4a): what ``data check`` accepts, every reader decodes: the training
cache, the uncached crop loader, evaluation."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import local_config, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def m4a_corpus(tiny_corpus, tmp_path_factory) -> Path:
    """The tiny corpus's speaker folder with every wav re-encoded to AAC in m4a by ffmpeg."""
    out = tmp_path_factory.mktemp("m4a") / "spk"
    source = tiny_corpus / "spk"
    for wav in source.rglob("*.wav"):
        target = out / wav.relative_to(source).with_suffix(".m4a")
        target.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["ffmpeg", "-loglevel", "error", "-y", "-i", str(wav), "-c:a", "aac", "-b:a", "64k",
                        str(target)], check=True)
    if (source / "trials.txt").is_file():
        (out / "trials.txt").write_text((source / "trials.txt").read_text().replace(".wav", ".m4a"))
    return out


def test_an_m4a_speaker_corpus_checks_prepares_and_trains(m4a_corpus, tmp_path):
    from dist_spk.launch.run import run_training

    assert not list(m4a_corpus.rglob("*.wav"))
    checked = run_cli("data", "check", m4a_corpus)
    assert checked.returncode == 0, checked.stdout[-2000:]
    prepared = run_cli("data", "prepare", m4a_corpus, "--out", tmp_path / "cache")
    assert prepared.returncode == 0, prepared.stderr[-2000:]
    for name, cache in (("cached", str(tmp_path / "cache")), ("decoded", "")):
        config = local_config("spk", m4a_corpus, **{"trainer.epochs": 1, "data.cache": cache, "data.batch_size": 4})
        summary = run_training("spk", config, out=tmp_path / name)
        assert summary["best"]["eer"] is not None and 0.0 <= summary["best"]["eer"] <= 1.0, name
    shutil.rmtree(tmp_path / "cache")
