"""Start a worker loop: in this process (``workers=0``) or as a Ray Train worker group (DDP).

This is the driver side of the Ray adapter; :mod:`dist_spk.train.session` is the worker side.
"""

from __future__ import annotations

import importlib
import os
import uuid
from pathlib import Path
from typing import Any

from dist_spk.config.tasks import TrainerConfig
from dist_spk.cuda import unusable
from dist_spk.errors import DistSpkError
from dist_spk.train.startup import forget_launch, stamp

# task -> "module:function" of its worker loop (imported lazily: each pulls in torch and pyannote)
LOOPS = {
    "seg": "dist_spk.train.seg_loop:train_segmentation",
    "spk": "dist_spk.train.spk_loop:train_speaker",
}


def worker_loop(task: str):
    if task not in LOOPS:
        raise DistSpkError(f"no worker loop for task {task!r}; valid: {', '.join(LOOPS)}")
    module, function = LOOPS[task].split(":")
    return getattr(importlib.import_module(module), function)


def ray_worker(payload: dict[str, Any]) -> None:
    """What each Ray Train worker runs."""
    from dist_spk.train.session import RaySession

    stamp(payload, "entered")
    resume_from = payload.get("resume_from")
    session = RaySession(resume_from=Path(resume_from) if resume_from else None)
    if session.restarted:
        forget_launch(payload)
    worker_loop(payload["task"])(payload, session)


def run_local(payload: dict[str, Any]) -> None:
    from dist_spk.train.session import LocalSession

    stamp(payload, "entered")
    resume_from = payload.get("resume_from")
    worker_loop(payload["task"])(payload, LocalSession(resume_from=Path(resume_from) if resume_from else None))


def local_ray_env() -> None:
    """Settings for a Ray this process starts on this machine (the local test mode), unless already set.

    Ray Train's preemption watcher (one more actor per run, polling Ray for nodes being drained, as
    spot instances are) guards cluster runs; one machine is never drained, and on a small one every
    process started per trial delays the trial (bench/trial_start.py). Set before ``ray.init``: the
    local raylet, and so every worker, inherits this process's environment.

    Tune snapshots its experiment state after every trial checkpoint (it keeps one per trial) and
    warns when snapshots come less than 5 s apart: always, with the seconds-long epochs of the local
    presets (64 three-line warnings in one ``make demo``), while each local snapshot took ~0.01 s.
    On a cluster, with real epochs, the warning keeps its meaning (slow storage) and stays on.
    """
    os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")


def connect_ray() -> None:
    """Join the cluster in ``RAY_ADDRESS`` (as ``ray job submit`` sets), else start a local one.

    The local cluster keeps Ray's dashboard on: without it, finished worker groups were seen not to
    release their placement groups in Ray 2.60 (../shared/FINDINGS.md).
    """
    import ray

    if not ray.is_initialized():
        address = os.environ.get("RAY_ADDRESS") or None
        if address is None:
            local_ray_env()
        ray.init(address=address, log_to_driver=True)


def check_shared_storage(path: Path) -> None:
    """On a multi-node cluster, every node must see ``path`` (checkpoints, caches, run directories).

    A probe file is written here and looked for by a task pinned to each alive node; a node that
    cannot see it means ``path`` is node-local, and trials would lose their checkpoints.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    if len(nodes) < 2:
        return
    probe = Path(path).resolve() / f".storage-probe-{uuid.uuid4().hex}"
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text("dist_spk")

    @ray.remote(num_cpus=0)
    def sees(file: str) -> bool:
        return Path(file).is_file()

    try:
        checks = {n["NodeManagerAddress"]: sees.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(str(probe)) for n in nodes}
        blind = [address for address, ref in checks.items() if not ray.get(ref, timeout=120)]
    finally:
        probe.unlink(missing_ok=True)
    if blind:
        raise DistSpkError(f"{Path(path).resolve()} is not visible from node(s) {', '.join(blind)}: on a multi-node "
                           "cluster put --out (and data.cache_dir) on storage every node mounts (NFS, EFS)")


def check_gpu_workers(trainer: TrainerConfig, *, timeout: float = 1800) -> None:
    """With ``use_gpu``: one task shaped like a worker (its GPUs and extra resources) checks CUDA on a node where
    workers will run, before any worker group starts; the autoscaler adds such a node first if none is up.

    Every worker group checks again before NCCL starts (:func:`torch_config`), and every Lightning trainer when it
    picks its device (``require_cuda``): this check turns a cluster-wide problem (an image or a driver too old for
    torch's CUDA) into one error before any worker group starts.
    """
    if not trainer.use_gpu:
        return
    import ray

    from dist_spk.cuda import cuda_report

    probe = ray.remote(num_cpus=0, num_gpus=trainer.gpus_per_worker, resources=trainer.worker_resources or None,
                       max_retries=0)(cuda_report)
    print("[ray] checking CUDA where a GPU worker runs (the autoscaler may add a node first)", flush=True)
    ref = probe.remote()
    try:
        report = ray.get(ref, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref, force=True)
        raise DistSpkError(f"no node with {trainer.gpus_per_worker:g} GPU(s) per worker came up within "
                           f"{timeout:g} s; check the autoscaler (ray status, monitor.err)") from None
    if not report["cuda_available"]:
        raise unusable("on a GPU worker", [report])


def torch_config(trainer: TrainerConfig):
    """Ray Train's torch backend settings: with GPUs, one that checks CUDA on every worker before NCCL starts."""
    if not trainer.use_gpu:
        return None
    from dist_spk.train.cuda_backend import CudaCheckedTorchConfig

    return CudaCheckedTorchConfig()


def training_error(error: BaseException) -> BaseException:
    """The error a user should see: ours when Ray wrapped it (a controller or worker-group failure), else Ray's."""
    seen, current = set(), error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DistSpkError):
            return current
        current = (getattr(current, "controller_failure", None) or getattr(current, "__cause__", None)
                   or getattr(current, "cause", None))
    return error


def scaling_config(trainer: TrainerConfig):
    from ray.train import ScalingConfig

    from dist_spk.launch.capacity import worker_bundle

    return ScalingConfig(num_workers=trainer.workers, use_gpu=trainer.use_gpu,
                         resources_per_worker=worker_bundle(trainer))


def check_ray_run(trainer: TrainerConfig) -> None:
    """Before a single Ray Train run writes anything: join Ray, refuse a worker group no node type can hold,
    check CUDA where GPU workers will run."""
    from dist_spk.launch.capacity import plan_concurrency, read_cluster_capacity

    connect_ray()
    plan_concurrency(trainer, read_cluster_capacity(), driver_cpus=0)
    check_gpu_workers(trainer)


def run_ray_train(payload: dict[str, Any], trainer: TrainerConfig, *, storage: Path, name: str = "train",
                  max_failures: int = 2) -> None:
    """Fit one worker group; a failed worker restarts the group from the last reported checkpoint."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer

    connect_ray()
    check_shared_storage(storage)
    run_config = RunConfig(
        name=name,
        storage_path=str(Path(storage).resolve()),
        failure_config=FailureConfig(max_failures=max_failures),
        checkpoint_config=CheckpointConfig(num_to_keep=2),
    )
    try:
        result = TorchTrainer(ray_worker, train_loop_config=payload, scaling_config=scaling_config(trainer),
                              torch_config=torch_config(trainer), run_config=run_config).fit()
        error = result.error
    except Exception as err:  # noqa: BLE001 - Ray raises controller failures from fit()
        error = err
    if error is not None:
        ours = training_error(error)
        if isinstance(ours, DistSpkError):
            raise ours from None
        raise DistSpkError(f"training failed: {error}")
