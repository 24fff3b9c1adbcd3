"""A real two-node Ray cluster on this machine (`ray start --head` + `ray start --address`, token auth on), shared
by the tests that need one: `dist-spk doctor` on every node, `ray job submit` of ray_jobs/tune_speaker.py, and
`dist-spk data prepare` as a Ray Data job."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import pytest

from dist_spk.data.training_cache import AUDIO, MANIFEST, dataset_sources, prepare
from tests.conftest import CLI, run_cli, short_epochs
from tests.local_cluster import LocalCluster
from tests.wandb_records import trial_runs

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DRIVER_ROWS = ("experiment dir", "W&B", "hub token", "ray", "node types", "tune seg", "tune spk")
NODE_ROWS = ("python/torch", "CUDA", "audio decode", "shared storage")


CLUSTER_TOKEN = "hf_" + "c" * 34  # a credential set the README's way: the cluster's own (its nodes' environment)


@pytest.fixture(scope="module")
def cluster():
    """One cluster for the module (starting one takes ~30 s on 2 cores); stopping it ends everything it started."""
    with LocalCluster(nodes=2, cpus_per_node=2, extra_env={"HF_TOKEN": CLUSTER_TOKEN}) as started:
        yield started
        running = set(started.processes())
    assert running and not set(started.processes()) & running


def _rows(output: str) -> dict[tuple[str, str], str]:
    """(check, where) -> status, read back from the printed table."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[0] and cells[2] in ("ok", "warn", "FAIL"):
            rows[(cells[0], cells[1])] = cells[2]
    return rows


def test_doctor_checks_every_node_and_names_each_blocker(cluster, tmp_path):
    env = {**cluster.env, "RAY_ADDRESS": f"127.0.0.1:{cluster.port}", "COLUMNS": "200"}
    env.pop("HF_TOKEN", None)
    healthy = subprocess.run([*CLI, "doctor", "--out", str(tmp_path / "exp"), "--preset", "local"], env=env,
                             capture_output=True, text=True, timeout=600)
    broken_out = tmp_path / "a-file"
    broken_out.write_text("not a directory")
    broken = subprocess.run([*CLI, "doctor", "--out", str(broken_out), "--preset", "cluster"], env=env,
                            capture_output=True, text=True, timeout=600)
    assert healthy.returncode == 0, healthy.stdout[-4000:] + healthy.stderr[-4000:]
    rows = _rows(healthy.stdout)
    assert all((check, "driver") in rows for check in DRIVER_ROWS), rows
    nodes = {where for _, where in rows if where != "driver"}
    assert len(nodes) == 2  # both nodes, each checked by a task pinned to it
    assert all(rows[(check, node)] == "ok" for check in NODE_ROWS for node in nodes)
    assert rows[("W&B", "driver")] == "warn"  # no key here: offline, not a blocker
    assert "no blocker" in healthy.stdout and not list((tmp_path / "exp").iterdir())  # the probe is removed

    assert broken.returncode == 1, broken.stdout[-4000:] + broken.stderr[-4000:]
    rows = _rows(broken.stdout)
    assert rows[("experiment dir", "driver")] == "FAIL"
    assert rows[("hub token", "driver")] == "FAIL"  # the cluster preset starts from a gated hub model
    assert rows[("tune spk", "driver")] == "FAIL"  # GPU trials, and no node type here offers a GPU
    assert broken.stdout.strip().splitlines()[-1] == ("4 blocker(s): experiment dir on driver, hub token on driver, "
                                                      "tune seg on driver, tune spk on driver")
    assert "Traceback" not in broken.stderr


def test_tune_speaker_job_runs_on_a_two_node_cluster(cluster, small_corpus, tmp_path):
    exp = tmp_path / "exp"
    space = tmp_path / "space.yaml"
    space.write_text("parameters:\n  optim.lr: {grid: [1.0e-3, 3.0e-3]}\n  head.margin: {value: 0.2}\n")
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
    with (exp / "summary.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 and all(row["status"] == "completed" and row["epochs"] == "2" for row in rows)
    best = json.loads((exp / "best" / "metrics.json").read_text())
    assert best["objective"] == "eer" and 0.0 <= best["best"]["eer"] <= 1.0
    assert (exp / "best" / "checkpoint.ckpt").is_file()
    assert len(trial_runs(exp)) == 2


def test_jobs_find_the_clusters_credentials_and_ray_job_list_shows_none(cluster, tmp_path):
    probe = ("import os; token = os.environ.get('HF_TOKEN', ''); "
             "print('cluster credential visible to the job:', len(token) == 37 and token.startswith('hf_'))")
    # submitted the way the README says: no --metadata-json, nothing in the runtime env, no token on the client
    job = cluster.submit(["python", "-c", probe], env={"HF_TOKEN": ""}, working_dir=str(tmp_path))
    assert job.returncode == 0, (job.stdout + job.stderr)[-3000:]
    assert "cluster credential visible to the job: True" in job.stdout
    listing = cluster.ray("job", "list", f"--address={cluster.dashboard}", env={**cluster.env, "HF_TOKEN": ""})
    assert listing.returncode == 0, listing.stderr[-2000:]
    assert "cluster credential visible" in listing.stdout  # the list shows the jobs (entrypoints, metadata)...
    assert CLUSTER_TOKEN not in listing.stdout + listing.stderr  # ...and no credential


def test_prepare_on_two_nodes_writes_the_local_cache_and_a_local_run_trains_on_it(cluster, small_corpus, tmp_path):
    data, cache = small_corpus / "spk", tmp_path / "cache"
    files = len(set(dataset_sources(data, task="spk")))
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
