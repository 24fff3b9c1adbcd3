"""System metrics of the training worker itself (the GPU node), not of the driver that talks to W&B.

W&B's own system monitor samples the process that called ``wandb.init``: in a search that is the driver on the
head node, which has no GPU. So rank 0 samples its own process, host and GPU with psutil and NVML (the library
``nvidia-smi`` uses) and writes the figures into its step log (``RUN/steps.jsonl``) beside the training loss; the
W&B side streams them like every step row, under ``worker/``:

- ``worker/cpu_percent`` (this process, % of one core), ``worker/memory_rss_gb``, ``worker/host_memory_percent``;
- on CUDA: ``worker/gpu_memory_allocated_gb`` and ``worker/gpu_max_memory_allocated_gb`` (PyTorch's allocator),
  and from NVML ``worker/gpu_utilization_percent``, ``worker/gpu_memory_used_percent`` (every process on the GPU),
  ``worker/gpu_power_w``, ``worker/gpu_temperature_c``.
"""

from __future__ import annotations

import os

import psutil
import pynvml
import torch

GB = 1024**3


def nvml_index(cuda_index: int, visible: str | None) -> int | str:
    """The NVML device (index, or UUID) behind CUDA device ``cuda_index`` of this process.

    Ray gives each worker its GPUs through ``CUDA_VISIBLE_DEVICES`` (indices or ``GPU-...`` UUIDs), so CUDA's
    device 0 is the first of those, while NVML numbers every GPU of the machine.
    """
    if not visible:
        return cuda_index
    devices = [d.strip() for d in visible.split(",") if d.strip()]
    chosen = devices[cuda_index]
    return int(chosen) if chosen.isdigit() else chosen


class WorkerMonitor:
    """Samples this worker's process, host and (when training on CUDA) its GPU."""

    def __init__(self, device: torch.device):
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # psutil's first reading only starts the interval
        self.device = device if device.type == "cuda" else None
        self.gpu = self._nvml_handle() if self.device is not None else None

    def _nvml_handle(self):
        try:
            pynvml.nvmlInit()
            index = nvml_index(self.device.index or 0, os.environ.get("CUDA_VISIBLE_DEVICES"))
            if isinstance(index, str):
                return pynvml.nvmlDeviceGetHandleByUUID(index)
            return pynvml.nvmlDeviceGetHandleByIndex(index)
        except (pynvml.NVMLError, IndexError):  # no NVML library or device: PyTorch's own figures still come
            return None

    def sample(self) -> dict[str, float]:
        memory = self.process.memory_info()
        row = {"worker/cpu_percent": self.process.cpu_percent(None), "worker/memory_rss_gb": memory.rss / GB,
               "worker/host_memory_percent": psutil.virtual_memory().percent}
        if self.device is not None:
            row["worker/gpu_memory_allocated_gb"] = torch.cuda.memory_allocated(self.device) / GB
            row["worker/gpu_max_memory_allocated_gb"] = torch.cuda.max_memory_allocated(self.device) / GB
        if self.gpu is not None:
            row.update(self._nvml())
        return {key: round(float(value), 4) for key, value in row.items()}

    def _nvml(self) -> dict[str, float]:
        try:
            used = pynvml.nvmlDeviceGetMemoryInfo(self.gpu)
            return {"worker/gpu_utilization_percent": pynvml.nvmlDeviceGetUtilizationRates(self.gpu).gpu,
                    "worker/gpu_memory_used_percent": 100.0 * used.used / used.total,
                    "worker/gpu_power_w": pynvml.nvmlDeviceGetPowerUsage(self.gpu) / 1000.0,
                    "worker/gpu_temperature_c": pynvml.nvmlDeviceGetTemperature(self.gpu,
                                                                                pynvml.NVML_TEMPERATURE_GPU)}
        except pynvml.NVMLError:  # a query this GPU does not support: skip this sample's NVML figures
            return {}
