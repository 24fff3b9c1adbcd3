"""`dist-spk tune` on a cluster that autoscales from zero worker nodes (Ray's fake multi-node provider)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time

import pytest

from tests.conftest import CLI, short_epochs
from tests.fake_autoscaler import FakeAutoscalingCluster

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# Ray's own record of every Ray Train worker actor of the cluster: the node it ran on
PLACEMENT = """
import json, ray
from ray.util.state import list_actors
ray.init()
rows = list_actors(filters=[("class_name", "=", "RayTrainWorker")], limit=1000, raise_on_missing_output=False)
head = [n["NodeID"] for n in ray.nodes() if "node:__internal_head__" in n["Resources"]][0]
print(json.dumps({"head": head, "nodes": len(ray.nodes()), "workers": [r.node_id for r in rows]}))
"""


def _reported(exp) -> list[tuple[float, float]]:
    """Each trial's first and last report time, from Tune's own result files."""
    spans = []
    for result in sorted((exp / "tune").glob("*/result.json")):
        times = [json.loads(line)["timestamp"] for line in result.read_text().splitlines() if line.strip()]
        spans.append((min(times), max(times)))
    return spans


def _tune(env: dict, corpus, out, space, *sets: str, timeout: float) -> subprocess.CompletedProcess:
    """``dist-spk tune spk`` as a user would run it against the cluster in ``env`` (RAY_ADDRESS)."""
    args = ["tune", "spk", "--preset", "local", "--data", str(corpus / "spk"), "--out", str(out), "--space",
            str(space), "--num-samples", "1", "--scheduler", "fifo", "--set", "trainer.epochs=2", "--set",
            "data.batch_size=64", *short_epochs("spk")]
    for value in sets:
        args += ["--set", value]
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


def test_a_search_grows_the_cluster_from_zero_worker_nodes_and_refuses_a_shape_it_cannot_hold(small_corpus,
                                                                                              tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("parameters:\n  optim.lr: {grid: [1.0e-3, 3.0e-3]}\n")
    worker_types = {"trial_node": {"resources": {"CPU": 2, "trial_node": 1}, "min_workers": 0, "max_workers": 2}}
    with FakeAutoscalingCluster(head_cpus=2, worker_types=worker_types) as cluster:
        env = cluster.client_env()

        started = time.monotonic()
        refused = _tune(env, small_corpus, tmp_path / "refused", space, 'trainer.worker_resources={"A100": 1}',
                        timeout=120)
        assert time.monotonic() - started < 30
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "no node type of this cluster can ever hold it" in refused.stderr
        assert "ray.head.default {CPU: 2}" in refused.stderr
        assert "trial_node {CPU: 2, trial_node: 1} (up to 2 node(s), 0 alive)" in refused.stderr
        assert "Traceback" not in refused.stderr and not (tmp_path / "refused").exists()

        # doctor asks the autoscaler for a node of the type no node is up of, and checks it there
        doctor = subprocess.run([*CLI, "doctor", "--out", str(tmp_path / "doctor"), "--preset", "local",
                                 "--timeout", "300"], env={**env, "COLUMNS": "200"}, capture_output=True, text=True,
                                timeout=600)
        assert doctor.returncode == 0, doctor.stdout[-4000:] + doctor.stderr[-4000:]
        assert "[doctor] trial_node: asking the autoscaler for a node" in doctor.stdout
        assert "[doctor] trial_node: checked on" in doctor.stdout
        assert "trial_node {CPU: 2, trial_node: 1} (up to 2 node(s), 0 alive)" in doctor.stdout

        exp = tmp_path / "exp"
        search = _tune(env, small_corpus, exp, space, 'trainer.worker_resources={"trial_node": 1}', timeout=1200)
        output = search.stdout + search.stderr
        assert search.returncode == 0, output[-6000:]
        assert "2 trial(s) at once (cluster can grow to" in output
        placement = subprocess.run([sys.executable, "-c", PLACEMENT], env=env, capture_output=True, text=True,
                                   timeout=120)
        assert placement.returncode == 0, placement.stderr[-3000:]
        seen = json.loads(placement.stdout.strip().splitlines()[-1])
    assert seen["nodes"] >= 3  # the head and two added trial nodes
    workers = seen["workers"]
    assert len(workers) >= 2 and seen["head"] not in workers and len(set(workers)) >= 2  # on two added nodes
    (start_a, end_a), (start_b, end_b) = _reported(exp)
    assert start_a <= end_b and start_b <= end_a  # the two trials reported epochs during the same time
    with (exp / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and all(row["status"] == "completed" for row in rows)
