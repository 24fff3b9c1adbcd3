"""Ray Train's torch backend, checking CUDA on every worker before it builds the NCCL process group.

Without the check, a GPU worker whose node cannot run torch's CUDA (driver too old, CPU-only image) fails inside
Ray's backend set-up with ``ProcessGroupNCCL is only supported with GPUs, no GPUs found!``, which names neither
the node nor the versions. Built on Ray's public extension points: a ``BackendConfig`` names its backend class
(``backend_cls``), and a backend's ``on_start`` runs once per worker group start, before the training function.
"""

from __future__ import annotations

from dataclasses import dataclass

from ray.train.torch import TorchConfig

from dist_spk.cuda import cuda_report, unusable


def _checked(backend_cls: type) -> type:
    class CudaCheckedBackend(backend_cls):
        def on_start(self, worker_group, backend_config):
            reports = worker_group.execute(cuda_report)
            broken = [report for report in reports if not report["cuda_available"]]
            if broken:
                raise unusable(f"on {len(broken)} of {len(reports)} worker(s)", broken)
            super().on_start(worker_group, backend_config)

    return CudaCheckedBackend


@dataclass
class CudaCheckedTorchConfig(TorchConfig):
    """``TorchConfig`` whose backend checks CUDA on every worker first (pass as ``TorchTrainer(torch_config=)``)."""

    @property
    def backend_cls(self):
        return _checked(super().backend_cls)
