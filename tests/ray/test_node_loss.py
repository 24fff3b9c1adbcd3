"""A worker node disappears mid-trial (a spot preemption): the trial continues from its checkpoint on the other node."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.conftest import CLI, short_epochs
from tests.local_cluster import LocalCluster

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.chaos]

EPOCHS = 6
# a dead node is noticed after a few missed health checks (Ray's default: 5 of 3 s, then the raylet's grace period)
FAST_NODE_DEATH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}


def history(run_dir) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def rank0_worker(cluster: LocalCluster) -> int | None:
    found = subprocess.run(["pgrep", "-f", "ray::RayTrainWorker"], capture_output=True, text=True).stdout.split()
    mine = [int(pid) for pid in found if int(pid) in set(cluster.processes())]
    return mine[0] if mine else None


def test_a_lost_worker_node_costs_at_most_the_epochs_since_the_last_checkpoint(small_corpus, tmp_path):
    exp = tmp_path / "exp"
    # nothing but the search's driver on the head: the trial runs on the worker nodes, one of which is lost
    with LocalCluster(nodes=3, cpus_per_node=2, head_cpus=0, extra_env=FAST_NODE_DEATH) as cluster:
        env = {**cluster.env, "RAY_ADDRESS": f"127.0.0.1:{cluster.port}", "WANDB_MODE": "offline"}
        search = subprocess.Popen(
            [*CLI, "tune", "spk", "--preset", "local", "--data", str(small_corpus / "spk"), "--out", str(exp),
             "--num-samples", "1",
             "--scheduler", "fifo", "--set", f"trainer.epochs={EPOCHS}", "--set", "data.batch_size=64",
             "--set", "search.max_trial_failures=2", *short_epochs("spk")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline, lost, done_before, killed_at = time.time() + 600, None, 0, 0.0
        while time.time() < deadline and lost is None and search.poll() is None:
            trials = list((exp / "trials").glob("*")) if (exp / "trials").is_dir() else []
            done = len(history(trials[0])) if trials else 0
            worker = rank0_worker(cluster) if done >= 2 else None
            if worker is not None:
                lost, done_before, killed_at = cluster.node_of(worker), done, time.time()
                cluster.kill_node(lost)
            time.sleep(0.5)
        assert lost is not None, "the trial never reached its third epoch on a worker node"
        assert not cluster.node_processes(lost)
        # the trial's worker comes back on the other node
        deadline, moved_to = time.time() + 300, None
        while time.time() < deadline and moved_to is None and search.poll() is None:
            worker = rank0_worker(cluster)
            moved_to = cluster.node_of(worker) if worker is not None else None
            time.sleep(0.5)
        assert moved_to not in (None, lost)
        output, _ = search.communicate(timeout=900)
        assert search.returncode == 0, output[-6000:]
    (trial,) = (exp / "trials").iterdir()
    rows = history(trial)
    assert [row["epoch"] for row in rows] == list(range(EPOCHS))  # completed; no epoch counted twice
    # epochs finished before the loss were kept; at most the one whose checkpoint had not landed was trained again
    retrained = [row["epoch"] for row in rows if row["wall_time"] > killed_at]
    assert retrained and min(retrained) >= done_before - 1, (done_before, retrained)
    print(f"lost node{lost} after {done_before} epochs; continued on node{moved_to} with epochs {retrained}; "
          f"Ray Train runs of the trial: {sorted(p.name for p in (exp / 'train').iterdir())}")
    summary = (exp / "summary.csv").read_text()
    assert "completed" in summary
