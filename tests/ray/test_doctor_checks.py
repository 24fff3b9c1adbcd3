"""`dist-spk doctor`'s checks, from the reports a node gives back (no Ray here; on a cluster:
tests/ray/test_two_node_cluster.py)."""

from __future__ import annotations

import pytest

from dist_spk.launch.doctor import (
    FAIL,
    OK,
    WARN,
    check_experiment_dir,
    check_hub_token,
    check_wandb,
    node_report,
    rows_for_node,
)
from dist_spk.tune.wandb_logging import wandb_key

pytestmark = pytest.mark.ray  # imports Ray's library (tests/unit stays Ray-free); starts no cluster


def _report(**changes) -> dict:
    report = {"node": "gpu-1", "python": "3.11.7", "dist_spk": "0.1.0", "torch": "2.14.1+cu130",
              "torch_cuda": "13.0", "driver": "580.65.06", "cuda_available": True, "gpus": ["NVIDIA A10G"] * 4,
              "nccl": "2.27.7", "cuda_error": None, "decode": "torchcodec decoded a 16 kHz WAV", "decode_ok": True,
              "probe_seen": True}
    return report | changes


def _status(rows, check: str) -> tuple[str, str]:
    (row,) = [r for r in rows if r.check == check]
    return row.status, row.detail


def test_a_gpu_node_passes_with_a_new_enough_driver_and_fails_with_an_old_one():
    rows = rows_for_node("gpu_worker", _report(), offers_gpu=True, probe="/mnt/efs/exp/.probe")
    assert [r.status for r in rows] == [OK, OK, OK, OK]
    assert _status(rows, "CUDA")[1] == "4 GPU(s) NVIDIA A10G; driver 580.65.06; NCCL 2.27.7"
    old = rows_for_node("gpu_worker", _report(driver="575.57.08"), offers_gpu=True, probe="/p/.probe")
    assert _status(old, "CUDA") == (FAIL, "4 GPU(s) NVIDIA A10G; driver 575.57.08 < 580 needed; NCCL 2.27.7")


def test_gpus_offered_without_usable_cuda_is_a_blocker_naming_node_driver_and_torch():
    rows = rows_for_node("gpu_worker", _report(cuda_available=False, gpus=[], driver=None, nccl=None),
                         offers_gpu=True, probe="/p/.probe")
    status, detail = _status(rows, "CUDA")
    assert status == FAIL
    assert "node gpu-1" in detail and "NVIDIA driver not found" in detail and "built for CUDA 13.0" in detail


def test_storage_and_decoding_failures_are_blockers():
    rows = rows_for_node("cpu", _report(probe_seen=False, decode_ok=False, decode="OSError: libavutil.so.59"),
                         offers_gpu=False, probe="/home/ubuntu/exp/.probe")
    assert _status(rows, "audio decode") == (FAIL, "OSError: libavutil.so.59")
    assert _status(rows, "shared storage")[0] == FAIL and "NFS, EFS" in _status(rows, "shared storage")[1]
    assert _status(rows, "CUDA") == (OK, "no GPU offered by this node type (CPU only)")


def test_this_machine_reports_itself_and_decodes_audio(tmp_path):
    probe = tmp_path / ".probe"
    probe.write_text("x")
    report = node_report(str(probe))
    assert report["decode_ok"], report["decode"]
    assert report["probe_seen"] and report["python"].startswith("3.11")


def test_an_experiment_dir_that_is_a_file_cannot_be_used(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("x")
    row, probe = check_experiment_dir(blocked)
    assert row.status == FAIL and probe is None and str(blocked) in row.detail
    row, probe = check_experiment_dir(tmp_path / "exp")
    assert row.status == OK and probe and (tmp_path / "exp").is_dir()


def test_wandb_login_is_found_in_netrc_and_offline_is_a_warning(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("NETRC", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens on the discard port
    assert wandb_key() == (None, "")
    assert check_wandb().status == WARN
    (tmp_path / ".netrc").write_text("machine 127.0.0.1\n  login user\n  password " + "k" * 40 + "\n")
    (tmp_path / ".netrc").chmod(0o600)
    key, source = wandb_key()
    assert key == "k" * 40 and source.endswith(".netrc (wandb login)")
    row = check_wandb()
    assert row.status == WARN and "unreachable" in row.detail and "k" * 40 not in row.detail


def test_the_hub_token_is_a_blocker_only_for_a_preset_that_starts_from_a_hub_model(monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    assert check_hub_token("local").status == OK
    row = check_hub_token("cluster")
    assert row.status == FAIL and "pyannote/segmentation-3.0" in row.detail and "HF_TOKEN" in row.detail
    monkeypatch.setenv("HF_TOKEN", "hf_x")
    assert check_hub_token("cluster").status == OK
