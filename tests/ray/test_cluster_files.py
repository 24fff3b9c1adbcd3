"""cluster.yaml, the KubeRay manifest, ray_jobs/ and its runtime env: valid, consistent, secret-free."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import pytest
import ray
import torch
import yaml
from ray.autoscaler._private.util import validate_config

from dist_spk.cuda import min_driver_for
from dist_spk.errors import DistSpkError
from dist_spk.launch.secrets import JOB_CONFIG_VAR, refuse_submitted_secrets
from dist_spk.tune.wandb_logging import KEY_VAR

pytestmark = pytest.mark.ray  # imports Ray's library (tests/unit stays Ray-free); starts no cluster

REPO = Path(__file__).resolve().parents[2]
SECRET_FILES = (".ray_token", "cluster.token", ".env", ".netrc")


def test_cluster_yaml_passes_rays_own_validation_and_starts_nodes_from_the_project_image():
    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    validate_config(config)
    assert "dist-spk" in config["docker"]["image"]  # built from k8s/Dockerfile: nodes install nothing
    assert not any("pip install" in c for key in ("setup_commands", "head_setup_commands", "worker_setup_commands")
                   for c in config[key])
    workers = [t for name, t in config["available_node_types"].items() if name != config["head_node_type"]]
    assert workers and all(t["min_workers"] == 0 for t in workers)  # GPU workers autoscale from zero
    del config["provider"]
    with pytest.raises(Exception, match="provider"):
        validate_config(config)  # the check is real


def test_the_project_image_pins_our_ray_and_python_and_copies_no_secret():
    dockerfile = (REPO / "k8s" / "Dockerfile").read_text()
    python = f"py{sys.version_info.major}{sys.version_info.minor}"
    assert f"FROM rayproject/ray:{ray.__version__}-{python}-gpu" in dockerfile
    assert "-c constraints.txt" in dockerfile and "COPY . " not in dockerfile  # only what the package needs
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    # secrets at any depth (a bare "*.token" matches only at the root of the build context)
    assert {".venv", ".git", "demo/", "**/.ray_token", "wandb/", "**/*.token", "**/.env", "**/.netrc"} <= ignored


def test_gpu_nodes_refuse_a_driver_too_old_for_our_torch():
    """torch's CUDA needs a minimum driver: cluster.yaml's GPU nodes check it, and README and file state it."""
    needed = min_driver_for(torch.version.cuda or "13.0")
    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    gpu = config["available_node_types"]["gpu_worker"]
    check = " ".join(gpu["initialization_commands"])
    assert "nvidia-smi --query-gpu=driver_version" in check and f"-ge {needed}" in check
    assert f">= {needed}" in (REPO / "cluster.yaml").read_text() and f">= {needed}" in (REPO / "README.md").read_text()
    # the shell test itself: a 575 driver fails, a 580 one passes (the command minus nvidia-smi)
    test = re.sub(r"v=\$\(nvidia-smi[^;]*;", "", gpu["initialization_commands"][0])
    for version, ok in (("575.57.08", False), (f"{needed}.65.06", True), ("", False)):
        result = subprocess.run(["bash", "-c", test], env={"v": version, "PATH": "/usr/bin:/bin"},
                                capture_output=True, text=True)
        assert (result.returncode == 0) is ok, (version, result.stdout)


def test_the_runtime_env_upload_holds_the_package_and_no_secret(tmp_path):
    """Zipped by Ray's own packaging code with the runtime env's excludes, as `ray job submit --working-dir .`."""
    from ray._private.runtime_env.packaging import _zip_files

    env = yaml.safe_load((REPO / "ray_jobs" / "runtime_env.yaml").read_text())
    work = tmp_path / "checkout"
    for name in ("src/dist_spk/cli.py", "ray_jobs/tune_speaker.py", ".venv/lib/torch.so", ".git/HEAD",
                 "demo/corpus/a.wav", "wandb/run.wandb", *SECRET_FILES):
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text("x")
    _zip_files(str(work), env["excludes"], str(tmp_path / "upload.zip"), include_gitignore=False)
    names = set(zipfile.ZipFile(tmp_path / "upload.zip").namelist())
    assert {"src/dist_spk/cli.py", "ray_jobs/tune_speaker.py"} <= names
    assert not [n for n in names if n.startswith((".venv", ".git/", "demo/", "wandb/")) or n in SECRET_FILES]


def _rayjob() -> dict:
    docs = list(yaml.safe_load_all((REPO / "k8s" / "rayjob-tune-speaker.yaml").read_text()))
    return next(d for d in docs if d["kind"] == "RayJob")


def _kuberay_schema() -> dict:
    """KubeRay v1.7.0's RayJob CRD (ray-operator/config/crd/bases/ray.io_rayjobs.yaml), stored in tests/schemas."""
    with gzip.open(REPO / "tests" / "schemas" / "kuberay-v1.7.0-ray.io_rayjobs.yaml.gz") as handle:
        crd = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # 1.4 MB of YAML
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return version["schema"]["openAPIV3Schema"]


def test_the_rayjob_validates_against_kuberays_crd_schema_with_token_auth():
    schema, job = _kuberay_schema(), _rayjob()
    jsonschema.validate(job, schema)
    cluster = job["spec"]["rayClusterSpec"]
    assert cluster["authOptions"]["mode"] == "token" and cluster["enableInTreeAutoscaling"]
    assert all(group["replicas"] == 0 and group["minReplicas"] == 0 for group in cluster["workerGroupSpecs"])
    broken = json.loads(json.dumps(job))
    broken["spec"]["rayClusterSpec"]["authOptions"]["mode"] = "password"
    with pytest.raises(jsonschema.ValidationError, match="password"):
        jsonschema.validate(broken, schema)  # the check is real


def test_rayjob_manifest_has_the_expected_kinds_and_takes_secrets_from_kubernetes_secrets():
    docs = list(yaml.safe_load_all((REPO / "k8s" / "rayjob-tune-speaker.yaml").read_text()))
    kinds = {(d["apiVersion"], d["kind"]) for d in docs}
    assert ("ray.io/v1", "RayJob") in kinds and ("v1", "PersistentVolumeClaim") in kinds
    job = _rayjob()
    assert "ray_jobs/tune_speaker.py" in job["spec"]["entrypoint"]
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]["containers"][0]
    for name in (KEY_VAR, "HF_TOKEN"):
        (entry,) = [e for e in head["env"] if e["name"] == name]
        assert "secretKeyRef" in entry["valueFrom"] and "value" not in entry
    assert "HF_TOKEN" not in job["spec"]["runtimeEnvYAML"]
    for group in job["spec"]["rayClusterSpec"]["workerGroupSpecs"]:  # the token is used on the head only
        assert not any(e["name"] == "HF_TOKEN" for c in group["template"]["spec"]["containers"]
                       for e in c.get("env", []))


def test_runtime_env_ships_the_package_and_no_secret():
    env = yaml.safe_load((REPO / "ray_jobs" / "runtime_env.yaml").read_text())
    assert all((REPO / module).is_dir() for module in env["py_modules"])
    assert env["env_vars"]["RAY_TRAIN_V2_ENABLED"] == "1"
    assert all(isinstance(value, str) for value in env["env_vars"].values())  # Ray wants strings
    assert KEY_VAR not in env["env_vars"] and "HF_TOKEN" not in env["env_vars"]


@pytest.mark.parametrize(("script", "flags"), [
    ("tune_speaker.py", ["--data", "--out", "--preset", "--space", "--num-samples", "--scheduler", "--search",
                         "--workers-per-trial", "--gpus-per-worker", "--max-concurrent", "--resume", "--set"]),
    ("doctor.py", ["--out", "--preset", "--no-scale", "--timeout"]),
    ("tune_segmentation.py", ["--data", "--out", "--num-samples", "--scheduler", "--workers-per-trial"]),
    ("train_best.py", ["--out", "--data", "--epochs", "--workers", "--set"]),
])
def test_ray_jobs_take_the_clis_flags(script, flags):
    result = subprocess.run([sys.executable, str(REPO / "ray_jobs" / script), "--help"], capture_output=True,
                            text=True, env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert all(flag in result.stdout for flag in flags)


def test_a_job_whose_metadata_holds_a_credential_is_refused(monkeypatch):
    monkeypatch.setenv(JOB_CONFIG_VAR, json.dumps({"metadata": {"wandb_api_key": "k" * 40}, "runtime_env": {}}))
    with pytest.raises(DistSpkError, match="'wandb_api_key'.*ray job list.*wandb login"):
        refuse_submitted_secrets()
    monkeypatch.setenv(JOB_CONFIG_VAR, json.dumps({"metadata": {"MY_S3_SECRET": "x", "team": "asr"}}))
    with pytest.raises(DistSpkError, match="'MY_S3_SECRET'"):
        refuse_submitted_secrets()
    for harmless in ({"metadata": {"team": "asr", "hf_token": ""}}, {"metadata": {}}, "not json"):
        monkeypatch.setenv(JOB_CONFIG_VAR, harmless if isinstance(harmless, str) else json.dumps(harmless))
        refuse_submitted_secrets()  # nothing to refuse


def test_a_ray_job_with_a_credential_in_its_metadata_stops_with_one_line(monkeypatch):
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin",
           JOB_CONFIG_VAR: json.dumps({"metadata": {"hf_token": "hf_" + "x" * 30}})}
    result = subprocess.run([sys.executable, str(REPO / "ray_jobs" / "tune_speaker.py"), "--help"],
                            capture_output=True, text=True, env=env)
    assert result.returncode == 2 and "'hf_token'" in result.stderr and "Traceback" not in result.stderr
    assert "hf_" + "x" * 30 not in result.stderr + result.stdout
