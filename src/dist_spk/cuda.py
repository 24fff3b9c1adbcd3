"""What this machine's CUDA stack is, and a hard stop when a GPU run would silently train on the CPU.

No Ray here: the Ray worker session, the driver's pre-flight task and ``dist-spk doctor`` all call these.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from pathlib import Path

from dist_spk.errors import DistSpkError

# torch's CUDA major version -> the oldest NVIDIA Linux driver that runs it (NVIDIA's CUDA toolkit release notes,
# "minimum required driver version" for minor version compatibility)
MIN_DRIVER = {11: 450, 12: 525, 13: 580}


class GPUUnavailableError(DistSpkError):
    """``trainer.use_gpu=true`` where no usable CUDA device is."""


def driver_version() -> str | None:
    """The NVIDIA kernel driver's version, from /proc or nvidia-smi; None when neither says."""
    proc = Path("/proc/driver/nvidia/version")
    try:
        match = re.search(r"Kernel Module\s+(?:for \S+\s+)?([0-9]+(?:\.[0-9]+)+)", proc.read_text())
        if match:
            return match.group(1)
    except OSError:
        pass
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.TimeoutExpired):
            return None
        first = out.stdout.strip().splitlines()[:1]
        if out.returncode == 0 and first:
            return first[0].strip()
    return None


def min_driver_for(torch_cuda: str | None) -> int | None:
    """The oldest driver that runs a torch built for ``torch_cuda`` (e.g. "13.0" -> 580)."""
    if not torch_cuda:
        return None
    return MIN_DRIVER.get(int(torch_cuda.split(".")[0]))


def cuda_report() -> dict[str, object]:
    """This process's view: node, torch and its CUDA, driver, NCCL, usable GPUs (names)."""
    import torch

    report: dict[str, object] = {
        "node": socket.gethostname(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "driver": driver_version(),
        "cuda_available": False,
        "gpus": [],
        "nccl": None,
        "cuda_error": None,
    }
    try:
        available = torch.cuda.is_available()
        report["cuda_available"] = available
        if available:
            report["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            report["nccl"] = ".".join(map(str, torch.cuda.nccl.version()))
    except Exception as err:  # noqa: BLE001 - a broken driver raises from inside torch's lazy CUDA init
        report["cuda_error"] = f"{type(err).__name__}: {err}"
    return report


def explain(report: dict[str, object]) -> str:
    """Why CUDA is not usable, in the words a cluster operator needs (node, driver, torch's CUDA)."""
    torch_cuda = report["torch_cuda"]
    driver = report["driver"] or "not found (no /proc/driver/nvidia/version, no nvidia-smi)"
    needed = min_driver_for(torch_cuda)  # type: ignore[arg-type]
    parts = [f"node {report['node']}", f"NVIDIA driver {driver}",
             f"torch {report['torch']} built for CUDA {torch_cuda or 'none (a CPU-only build)'}"
             + (f" (needs driver >= {needed})" if needed else "")]
    if report.get("cuda_error"):
        parts.append(str(report["cuda_error"]))
    return "; ".join(parts)


def unusable(where: str, reports: list[dict[str, object]]) -> GPUUnavailableError:
    """The one error for a GPU run without usable CUDA, ``where`` ("here", "on a GPU worker", ...)."""
    why = "; ".join(sorted({explain(report) for report in reports}))
    return GPUUnavailableError(f"trainer.use_gpu=true but CUDA is not usable {where} ({why}); fix the node's driver "
                               "or image, or set trainer.use_gpu=false to train on the CPU")


def require_cuda(use_gpu: bool) -> None:
    """Stop here when ``use_gpu`` and this process has no usable CUDA device: never train on the CPU silently."""
    if not use_gpu:
        return
    import torch

    if torch.cuda.is_available():  # the usual case: no report (nvidia-smi) needed
        return
    raise unusable("here", [cuda_report()])


DEVICES = ("auto", "cpu", "cuda")  # and cuda:N


def resolve_device(device: str) -> str:
    """``--device`` for inference: ``auto`` is the first GPU when this process has one, else the CPU; ``cuda``
    (or ``cuda:N``) without a usable GPU is one clear error (never a silent CPU run)."""
    import torch

    name = device.strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    if not re.fullmatch(r"cuda(:\d+)?", name):
        raise DistSpkError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise DistSpkError(f"--device {device}: CUDA is not usable here ({explain(cuda_report())}); use --device "
                           "auto or cpu")
    index = int(name.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise DistSpkError(f"--device {device}: this machine has {torch.cuda.device_count()} GPU(s)")
    return name
