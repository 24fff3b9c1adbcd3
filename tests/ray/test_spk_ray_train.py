"""`dist-spk train spk --workers 2`: DDP speaker training; EER from embeddings gathered across ranks."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli, short_epochs

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_two_ray_workers_gather_embeddings_for_eer(small_corpus, tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", "spk", "--data", small_corpus / "spk", "--out", out, "--workers", "2",
                     "--set", "trainer.epochs=3", *short_epochs("spk"), timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    assert all(0.0 <= row["eer"] <= 1.0 and "ari" in row for row in rows)
    assert "world_rank=1" in (out / "logs" / "workers.log").read_text()  # Ray Train started a second rank
    assert "[epoch 2] " in result.stdout and "RayTrainWorker" not in result.stdout  # our lines only
    # each rank embedded half of the 80 held-out utterances; the EER used all of them
    evaluation = run_cli("evaluate", "spk", "--checkpoint", out / "checkpoints" / "last.ckpt", "--data",
                         small_corpus / "spk", "--trials", small_corpus / "spk" / "trials.txt",
                         "--out", tmp_path / "eval.json")
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    assert json.loads((tmp_path / "eval.json").read_text())["eer"] == pytest.approx(rows[-1]["eer"], abs=1e-6)
