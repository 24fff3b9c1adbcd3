"""`dist-spk train seg --workers 2`: a real Ray Train worker group (DDP over gloo) on a local Ray."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli, short_epochs

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_two_ray_workers_train_report_and_checkpoint(small_corpus, tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", "seg", "--data", small_corpus / "diar", "--out", out, "--workers", "2",
                     "--set", "trainer.epochs=2", *short_epochs("seg"), timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [row["epoch"] for row in rows] == [0, 1]
    assert "world_rank=1" in (out / "logs" / "workers.log").read_text()  # a second rank did run
    assert "[epoch 1] " in result.stdout and "RayTrainWorker" not in result.stdout  # our lines only
    # every epoch's checkpoint is stored once, by Ray; it keeps the latest and the best, which last/best point at
    reported = sorted((out / "ray" / "train").glob("checkpoint_*/checkpoint.ckpt"))
    assert 1 <= len(reported) <= 2
    assert (out / "checkpoints" / "last.ckpt").resolve() == reported[-1].resolve()
    assert (out / "checkpoints" / "best.ckpt").resolve() in {path.resolve() for path in reported}
    assert json.loads((out / "checkpoints" / "best.json").read_text())["epoch"] in (0, 1)
    assert json.loads((out / "summary.json").read_text())["epochs"] == 2
