"""`trainer.use_gpu=true` where CUDA is not usable stops at start with one error; it never trains on the CPU.

This machine has no GPU. Ray is told it has one (``num_gpus=1``), so Ray schedules GPU workers here and hands
them CUDA_VISIBLE_DEVICES, exactly as on a node whose driver or image cannot run torch's CUDA.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from tests.conftest import run_cli

pytestmark = [pytest.mark.ray, pytest.mark.slow]

UNDER_RAY = """
import sys, ray
from ray.train import FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from dist_spk.config import load_config, to_dict
from dist_spk.errors import DistSpkError
from dist_spk.launch.ray_train import torch_config, training_error
from dist_spk.train.worker import ray_worker
from dist_spk.launch.run import run_training

data, out = sys.argv[1], sys.argv[2]
ray.init(num_cpus=2, num_gpus=1, include_dashboard=True)
config = load_config("spk", preset_name="local", overrides=[f"data.root={data}", "trainer.use_gpu=true",
                                                            "trainer.workers=1"])
try:  # the driver's pre-flight check, before anything is written
    run_training("spk", config, out=out)
except DistSpkError as err:
    print("PREFLIGHT:", err)
# every worker group checks again before NCCL starts (the pre-flight task may have run on another node)
try:
    result = TorchTrainer(ray_worker, train_loop_config={"task": "spk", "config": to_dict(config), "run_dir": out},
                          scaling_config=ScalingConfig(num_workers=1, use_gpu=True, resources_per_worker={"CPU": 1}),
                          torch_config=torch_config(config.trainer),
                          run_config=RunConfig(storage_path=sys.argv[3], failure_config=FailureConfig(max_failures=0))
                          ).fit()
    error = result.error
except Exception as err:
    error = err
error = training_error(error)
print("WORKER:", type(error).__name__, str(error).replace(chr(10), " "))
"""


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without usable CUDA")
def test_in_process_training_refuses_to_fall_back_to_the_cpu(small_corpus, tmp_path):
    out = tmp_path / "run"
    result = run_cli("train", "spk", "--data", small_corpus / "spk", "--out", out, "--workers", "0",
                     "--set", "trainer.use_gpu=true", "--set", "trainer.precision=32")
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: trainer.use_gpu=true but CUDA is not usable here (node ")
    assert f"torch {torch.__version__} built for CUDA {torch.version.cuda}" in line
    assert "NVIDIA driver not found" in line and "trainer.use_gpu=false" in line
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without usable CUDA")
def test_ray_gpu_workers_without_cuda_stop_at_start(small_corpus, tmp_path):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", UNDER_RAY, str(small_corpus / "spk"), str(out),
                             str(tmp_path / "ray")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    preflight = next(line for line in result.stdout.splitlines() if line.startswith("PREFLIGHT:"))
    assert "CUDA is not usable on a GPU worker (node " in preflight and "needs driver >=" in preflight
    worker = next(line for line in result.stdout.splitlines() if line.startswith("WORKER:"))
    assert worker.startswith("WORKER: GPUUnavailableError trainer.use_gpu=true but CUDA is not usable on 1 of 1 "
                             "worker(s) (node ")
    assert not (out / "metrics.jsonl").exists()  # no epoch was trained, on the CPU or anywhere
