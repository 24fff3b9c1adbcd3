"""The training worker's own system metrics (psutil, NVML): what can run without a GPU."""

from __future__ import annotations

import torch

from dist_spk.train.worker_metrics import WorkerMonitor, nvml_index


def test_cuda_device_maps_to_the_gpu_ray_assigned():
    assert nvml_index(0, None) == 0 and nvml_index(1, "") == 1
    assert nvml_index(0, "3,5") == 3 and nvml_index(1, "3,5") == 5  # Ray: CUDA_VISIBLE_DEVICES=3,5
    assert nvml_index(0, "GPU-1a2b,GPU-3c4d") == "GPU-1a2b"  # by UUID


def test_cpu_worker_reports_its_process_and_host():
    monitor = WorkerMonitor(torch.device("cpu"))
    sum(i * i for i in range(2_000_000))  # some CPU time in the interval
    row = monitor.sample()
    assert set(row) == {"worker/cpu_percent", "worker/memory_rss_gb", "worker/host_memory_percent"}
    assert row["worker/cpu_percent"] > 0 and 0.05 < row["worker/memory_rss_gb"] < 64
    assert 0 < row["worker/host_memory_percent"] <= 100
