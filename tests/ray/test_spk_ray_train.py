"""`dist-spk train spk --workers 2`: DDP speaker training; EER from embeddings gathered across ranks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_two_ray_workers_gather_embeddings_for_eer(small_corpus, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-c", "from dist_spk.cli import main; main()", "train", "spk", "--data",
         str(small_corpus / "spk"), "--out", str(out), "--workers", "2", "--set", "trainer.epochs=3"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    assert all(0.0 <= row["eer"] <= 1.0 and "ari" in row for row in rows)
    assert "world_rank=1" in result.stdout + result.stderr
    # each rank embedded half of the 80 held-out utterances; the EER used all of them
    evaluation = subprocess.run(
        [sys.executable, "-c", "from dist_spk.cli import main; main()", "evaluate", "spk", "--checkpoint",
         str(out / "checkpoints" / "last.ckpt"), "--data", str(small_corpus / "spk"), "--trials",
         str(small_corpus / "spk" / "trials.txt"), "--out", str(tmp_path / "eval.json")],
        capture_output=True, text=True, timeout=300,
    )
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    assert json.loads((tmp_path / "eval.json").read_text())["eer"] == pytest.approx(rows[-1]["eer"], abs=1e-6)
