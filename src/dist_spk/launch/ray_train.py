"""The driver side of Ray Train: join Ray, check the cluster can hold a worker group, build and fit it.

The worker side is :mod:`dist_spk.train.worker` (what each worker runs) and :mod:`dist_spk.train.session` (its one
adapter to Ray).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from dist_spk.config.tasks import TrainerConfig
from dist_spk.cuda import unusable
from dist_spk.errors import DistSpkError
from dist_spk.train.session import CHECKPOINT_NAME
from dist_spk.train.worker import ray_worker


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


def check_cache_storage(cache: str | None) -> None:
    """A training cache every worker reads: a folder must be on storage every node sees (probed beside it); one on
    an object store is fetched by each node (data/stored_cache.py)."""
    from dist_spk.runs import storage

    if cache and not storage.is_remote(cache):
        check_shared_storage(Path(cache).parent)


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


def point_checkpoints(run_location: str, objective: str):
    """A Ray Train callback, run in the controller: after each report, point the run's ``last`` (and, when the
    objective improved, ``best``) at the checkpoint Ray just uploaded (:func:`dist_spk.runs.run_dir.point_checkpoint`).
    """
    from ray.train import UserCallback

    from dist_spk.runs.run_dir import CheckpointPointers

    class PointCheckpoints(UserCallback):
        def __init__(self):
            self.pointers = CheckpointPointers(run_location, objective)

        def after_report(self, run_context, metrics, checkpoint):
            if checkpoint is not None:
                self.pointers.point(f"{checkpoint.path}/{CHECKPOINT_NAME}", metrics[0])

    return PointCheckpoints()


def torch_trainer(payload: dict[str, Any], trainer: TrainerConfig, *, storage_location: str, name: str,
                  objective: str, callbacks: tuple = (), keep_all: bool = False, max_failures: int = 2):
    """The one ``TorchTrainer`` builder (single runs and every trial of a search).

    Checkpoints go to ``storage_location`` (a path or an object-store URI); Ray keeps the latest and the best by
    ``objective`` (the run's ``last`` and ``best`` point at them), or every one when ``keep_all`` (PBT: another
    trial may still be starting from an older one). A failed worker restarts the group from the latest.
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchTrainer

    from dist_spk.runs import storage

    storage_path, filesystem = storage.ray_storage(storage_location)
    keep = CheckpointConfig() if keep_all else CheckpointConfig(
        num_to_keep=1, checkpoint_score_attribute=objective, checkpoint_score_order="min")
    return TorchTrainer(
        ray_worker,
        train_loop_config=payload,
        scaling_config=scaling_config(trainer),
        torch_config=torch_config(trainer),
        run_config=RunConfig(
            name=name,
            storage_path=storage_path,
            storage_filesystem=filesystem,
            callbacks=[point_checkpoints(payload["run_dir"], objective), *callbacks],
            failure_config=FailureConfig(max_failures=max_failures),
            checkpoint_config=keep,
        ),
    )


def run_ray_train(payload: dict[str, Any], trainer: TrainerConfig, *, storage_location: str, objective: str,
                  name: str = "train") -> None:
    """Fit one worker group; a failed worker restarts the group from the last reported checkpoint."""
    from dist_spk.runs import storage

    connect_ray()
    if not storage.is_remote(storage_location):
        check_shared_storage(Path(storage_location))
    check_cache_storage(payload.get("training_cache"))
    try:
        result = torch_trainer(payload, trainer, storage_location=storage_location, name=name,
                               objective=objective).fit()
        error = result.error
    except Exception as err:  # noqa: BLE001 - Ray raises controller failures from fit()
        error = err
    if error is not None:
        ours = training_error(error)
        if isinstance(ours, DistSpkError):
            raise ours from None
        raise DistSpkError(f"training failed: {error}")
