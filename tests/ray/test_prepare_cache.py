"""`dist-spk data prepare` as a Ray Data job on a real two-node Ray cluster on this machine; a local run uses it."""

from __future__ import annotations

import json
import subprocess

import pytest

from dist_spk.data.training_cache import AUDIO, MANIFEST, dataset_sources, prepare
from tests.conftest import CLI, run_cli, short_epochs
from tests.local_cluster import LocalCluster

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_prepare_on_two_nodes_writes_the_local_cache_and_a_local_run_trains_on_it(small_corpus, tmp_path):
    data, cache = small_corpus / "spk", tmp_path / "cache"
    files = len(set(dataset_sources(data, task="spk")))
    with LocalCluster(nodes=2, cpus_per_node=2) as cluster:
        env = {**cluster.env, "RAY_ADDRESS": f"127.0.0.1:{cluster.port}"}
        result = subprocess.run([*CLI, "data", "prepare", str(data), "--out", str(cache)], env=env,
                                capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"wrote {cache}: {files} files" in result.stdout
    assert "by a Ray Data job on 2 node(s)" in result.stdout  # both nodes decoded files
    log = tmp_path / "cache.prepare.log"  # what Ray says goes there, not to the console
    assert f"Ray's output in {log}" in result.stdout and "Connecting to existing Ray cluster" in log.read_text()
    assert "Connecting to existing Ray cluster" not in result.stdout + result.stderr

    # byte for byte the cache one process writes
    local = prepare(dataset_sources(data, task="spk"), tmp_path / "local", progress=False)
    assert (cache / AUDIO).read_bytes() == (local / AUDIO).read_bytes()
    assert json.loads((cache / MANIFEST).read_text()) == json.loads((local / MANIFEST).read_text())

    # a local training run (no cluster) uses it as it is: not rebuilt
    written = (cache / MANIFEST).stat().st_mtime_ns
    run = run_cli("train", "spk", "--data", data, "--out", tmp_path / "run", "--workers", "0", "--set",
                  "trainer.epochs=1", "--set", f"data.cache={cache}", *short_epochs("spk"), timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "preparing the training cache" not in run.stdout and (cache / MANIFEST).stat().st_mtime_ns == written
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 1 and 0.0 <= metrics[0]["eer"] <= 1.0

    refused = run_cli("data", "prepare", data, "--out", tmp_path / "other", "--engine", "spark")
    assert refused.returncode == 2 and "--engine spark: valid: auto, local, ray" in refused.stderr
    assert not (tmp_path / "other").exists()
