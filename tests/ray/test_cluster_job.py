"""`ray job submit` of ray_jobs/tune_speaker.py to a real two-node Ray cluster on this machine."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.conftest import short_epochs
from tests.local_cluster import LocalCluster
from tests.wandb_records import trial_runs

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def test_tune_speaker_job_runs_on_a_two_node_cluster(small_corpus, tmp_path):
    exp = tmp_path / "exp"
    space = tmp_path / "space.yaml"
    space.write_text("parameters:\n  optim.lr: {grid: [1.0e-3, 3.0e-3]}\n  head.margin: {value: 0.2}\n")
    with LocalCluster(nodes=2, cpus_per_node=2) as cluster:
        job = cluster.submit(
            ["python", "ray_jobs/tune_speaker.py", "--preset", "local", "--data", str(small_corpus / "spk"),
             "--out", str(exp), "--space", str(space), "--num-samples", "1", "--scheduler", "fifo",
             "--set", "trainer.epochs=2", "--set", "data.batch_size=64", *short_epochs("spk")],
            runtime_env="ray_jobs/runtime_env.yaml", cwd=REPO)
        output = job.stdout + job.stderr
        assert job.returncode == 0, output[-6000:]
        assert "' succeeded" in output  # ray job submit's last line: Job 'raysubmit_...' succeeded
        assert "2 node(s), 4 CPUs" in output  # the job joined this cluster, not a Ray of its own
        assert "2 trials of spk" in output
        started = set(cluster.processes())
    assert not set(cluster.processes()) & started  # everything it started is gone
    with (exp / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and all(row["status"] == "completed" and row["epochs"] == "2" for row in rows)
    best = json.loads((exp / "best" / "metrics.json").read_text())
    assert best["objective"] == "eer" and 0.0 <= best["best"]["eer"] <= 1.0
    assert (exp / "best" / "checkpoint.ckpt").is_file()
    assert len(trial_runs(exp)) == 2
