"""cluster.yaml, the KubeRay manifest, ray_jobs/ and its runtime env: valid, consistent, secret-free."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import ray
import yaml
from ray.autoscaler._private.util import validate_config

from dist_spk.tune.wandb_logging import JOB_CONFIG_VAR, KEY_VAR, adopt_submitted_key

REPO = Path(__file__).resolve().parents[2]


def test_cluster_yaml_passes_rays_own_validation_and_pins_our_versions():
    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    validate_config(config)
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    assert config["docker"]["image"] == f"rayproject/ray:{ray.__version__}-{python}-gpu"
    workers = [t for name, t in config["available_node_types"].items() if name != config["head_node_type"]]
    assert workers and all(t["min_workers"] == 0 for t in workers)  # GPU workers autoscale from zero
    assert any("pip install" in c and "constraints.txt" in c for c in config["setup_commands"])
    del config["provider"]
    with pytest.raises(Exception, match="provider"):
        validate_config(config)  # the check is real


def test_rayjob_manifest_has_the_expected_kinds_and_takes_the_key_from_a_secret():
    docs = list(yaml.safe_load_all((REPO / "k8s" / "rayjob-tune-speaker.yaml").read_text()))
    kinds = {(d["apiVersion"], d["kind"]) for d in docs}
    assert ("ray.io/v1", "RayJob") in kinds and ("v1", "PersistentVolumeClaim") in kinds
    job = next(d for d in docs if d["kind"] == "RayJob")
    assert "ray_jobs/tune_speaker.py" in job["spec"]["entrypoint"]
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    (key,) = [e for e in head["env"] if e["name"] == KEY_VAR]
    assert "secretKeyRef" in key["valueFrom"] and "value" not in key


def test_runtime_env_ships_the_package_and_no_secret():
    env = yaml.safe_load((REPO / "ray_jobs" / "runtime_env.yaml").read_text())
    assert all((REPO / module).is_dir() for module in env["py_modules"])
    assert env["env_vars"]["RAY_TRAIN_V2_ENABLED"] == "1"
    assert all(isinstance(value, str) for value in env["env_vars"].values())  # Ray wants strings
    assert KEY_VAR not in env["env_vars"]


@pytest.mark.parametrize(("script", "flags"), [
    ("tune_speaker.py", ["--data", "--out", "--preset", "--space", "--num-samples", "--scheduler", "--search",
                         "--workers-per-trial", "--gpus-per-worker", "--resume", "--set"]),
    ("tune_segmentation.py", ["--data", "--out", "--num-samples", "--scheduler", "--workers-per-trial"]),
    ("train_best.py", ["--out", "--data", "--epochs", "--workers", "--set"]),
])
def test_ray_jobs_take_the_clis_flags(script, flags):
    result = subprocess.run([sys.executable, str(REPO / "ray_jobs" / script), "--help"], capture_output=True,
                            text=True, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert all(flag in result.stdout for flag in flags)


def test_a_submitted_jobs_key_is_taken_from_its_metadata(monkeypatch):
    monkeypatch.delenv(KEY_VAR, raising=False)
    monkeypatch.setenv(JOB_CONFIG_VAR, json.dumps({"metadata": {"wandb_api_key": "k" * 40}, "runtime_env": {}}))
    assert adopt_submitted_key()
    assert os.environ[KEY_VAR] == "k" * 40
    monkeypatch.setenv(JOB_CONFIG_VAR, json.dumps({"metadata": {}}))
    monkeypatch.setenv(KEY_VAR, "mine")
    assert not adopt_submitted_key() and os.environ[KEY_VAR] == "mine"
