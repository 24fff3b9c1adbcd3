"""The local starting point for segmentation fine-tuning: trained once on its own synthetic corpus, then cached."""

from __future__ import annotations

import json

import pytest

from dist_spk.launch.pretrained import NAME, pretrained_segmentation
from dist_spk.segmentation.model import load_pretrained

pytestmark = pytest.mark.slow
QUICK = ("trainer.epochs=1", "data.chunks_per_epoch=64", "data.batch_size=16")  # the recipe, shortened for tests


def test_pretrained_once_then_served_from_the_cache(tmp_path):
    leftover = tmp_path / f".{NAME}.partial"
    leftover.mkdir()
    (leftover / "checkpoint.ckpt").write_text("half written")  # what an interrupted pretraining leaves
    said: list[str] = []
    checkpoint = pretrained_segmentation(cache=tmp_path, size="tiny", overrides=QUICK, log=said.append)
    assert checkpoint == tmp_path / NAME / "checkpoint.ckpt" and not leftover.exists()
    assert any("training" in line for line in said)
    model = load_pretrained(str(checkpoint))  # a pyannote checkpoint `model.init` can fine-tune
    assert model.specifications.powerset and model.specifications.duration == 2.0
    record = json.loads((checkpoint.parent / "pretrained.json").read_text())
    assert record["seed"] == 1000 and "optim.lr=0.001" in record["recipe"] and record["best"]["epoch"] == 0
    assert not (checkpoint.parent / "corpus").exists()  # the audio is re-made from the seed if ever needed
    stamp = checkpoint.stat().st_mtime_ns
    said.clear()
    assert pretrained_segmentation(cache=tmp_path, size="tiny", overrides=QUICK, log=said.append) == checkpoint
    assert said == [] and checkpoint.stat().st_mtime_ns == stamp  # no second training
