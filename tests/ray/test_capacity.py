"""Concurrency from what a cluster can become: node types x their max workers, a trial shape no type holds."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dist_spk.config import load_config
from dist_spk.config.tasks import TrainerConfig
from dist_spk.errors import ConfigError, DistSpkError
from dist_spk.launch.capacity import (
    Capacity,
    NodeType,
    node_types_from_autoscaling_config,
    plan_concurrency,
    trial_need,
    trials_that_fit,
    worker_bundle,
)

pytestmark = pytest.mark.ray  # imports Ray's library (tests/unit stays Ray-free); starts no cluster

REPO = Path(__file__).resolve().parents[2]
HEAD = {"CPU": 8.0, "node:__internal_head__": 1.0, "memory": 1e10}


def _cluster_yaml_capacity(alive: list[dict]) -> Capacity:
    """cluster.yaml's node types with the resources Ray fills in for their instance types on bootstrap."""
    config = yaml.safe_load((REPO / "cluster.yaml").read_text())
    config["available_node_types"]["head"]["resources"] = {"CPU": 8}
    config["available_node_types"]["gpu_worker"]["resources"] = {"CPU": 48, "GPU": 4}
    types, cap = node_types_from_autoscaling_config(config, alive)
    return Capacity(tuple(types), "cluster.yaml", cap, {"CPU": sum(n.get("CPU", 0) for n in alive),
                                                        "GPU": sum(n.get("GPU", 0) for n in alive)})


def test_a_cluster_with_no_gpu_node_yet_is_sized_by_what_it_can_grow_to():
    trainer = load_config("spk", preset_name="cluster").trainer  # 2 workers x (4 CPUs, 1 GPU)
    concurrent, line = plan_concurrency(trainer, _cluster_yaml_capacity([HEAD]))
    # 8 g5.12xlarge x 4 GPUs = 32 GPUs = 16 two-worker trials; their 16 drivers fit in the head's 8 CPUs and
    # the workers' spare CPUs (48 - 4 x 4 = 32 per node)
    assert concurrent == 16
    assert line == "16 trial(s) at once (cluster can grow to 32 GPUs; 0 now)"


def test_concurrency_does_not_freeze_at_the_nodes_alive_now():
    trainer = load_config("spk", preset_name="cluster").trainer
    one_gpu_node = [HEAD, {"CPU": 48.0, "GPU": 4.0, "memory": 1e11}]
    capacity = _cluster_yaml_capacity(one_gpu_node)
    assert [(t.name, t.alive) for t in capacity.node_types] == [("head", 1), ("gpu_worker", 1)]
    assert plan_concurrency(trainer, capacity)[0] == 16
    assert plan_concurrency(trainer, capacity, requested=3) == (3, "3 trial(s) at once (cluster can grow to 32 "
                                                                   "GPUs; 4 now; capped by max_concurrent=3)")


def test_the_cluster_wide_worker_cap_limits_the_growth():
    trainer = TrainerConfig(workers=1, use_gpu=True, cpus_per_worker=4, gpus_per_worker=1)
    types = (NodeType("head", {"CPU": 8.0}, 1, 1, head=True), NodeType("gpu", {"CPU": 16.0, "GPU": 4.0}, 10),
             NodeType("cpu", {"CPU": 16.0}, 10))
    assert plan_concurrency(trainer, Capacity(types, "test", max_worker_nodes=2))[0] == 8  # 2 GPU nodes x 4
    assert plan_concurrency(trainer, Capacity(types, "test"))[0] == 40


def test_worker_resources_pin_workers_to_the_node_type_that_carries_them():
    config = load_config("spk", preset_name="local", overrides=['trainer.worker_resources={"trial_node": 1}'])
    assert worker_bundle(config.trainer) == {"CPU": 1.0, "trial_node": 1.0}
    assert trial_need(config.trainer) == {"CPU": 2.0, "trial_node": 1.0}
    types = (NodeType("ray.head.default", {"CPU": 2.0}, 1, 1, head=True),
             NodeType("trial_node", {"CPU": 2.0, "trial_node": 1.0}, 2))
    assert plan_concurrency(config.trainer, Capacity(types, "test", 2))[0] == 2
    # 2 trials is all that fits: both nodes' slots are taken, whatever CPUs remain
    assert trials_that_fit([{"CPU": 64.0}, {"CPU": 2.0, "trial_node": 1.0}] * 1, config.trainer) == 1


def test_a_shape_no_node_type_can_hold_is_refused_naming_every_type():
    config = load_config("spk", preset_name="local", overrides=['trainer.worker_resources={"A100": 1}'])
    capacity = _cluster_yaml_capacity([HEAD])
    with pytest.raises(DistSpkError) as err:
        plan_concurrency(config.trainer, capacity)
    message = str(err.value)
    assert "{CPU: 1, A100: 1}" in message and "no node type of this cluster can ever hold it" in message
    assert "head {CPU: 8} (up to 1 node(s), 1 alive)" in message
    assert "gpu_worker {CPU: 48, GPU: 4} (up to 8 node(s), 0 alive)" in message


def test_a_trial_bigger_than_the_whole_cluster_is_refused():
    trainer = TrainerConfig(workers=4, use_gpu=False, cpus_per_worker=1)
    types = (NodeType("node-0", {"CPU": 4.0}, 1, 1, head=True),)
    with pytest.raises(DistSpkError, match="use fewer --workers-per-trial"):
        plan_concurrency(trainer, Capacity(types, "alive nodes"))
    # a single run's driver is the calling process: the same group fits
    assert plan_concurrency(trainer, Capacity(types, "alive nodes"), driver_cpus=0)[0] == 1


def test_a_fixed_cluster_says_it_cannot_grow():
    trainer = TrainerConfig(workers=1, use_gpu=False, cpus_per_worker=1)
    types = (NodeType("node-0", {"CPU": 4.0}, 1, 1, head=True),)
    assert plan_concurrency(trainer, Capacity(types, "alive nodes", now={"CPU": 4.0})) == (
        2, "2 trial(s) at once (4 CPUs, the cluster cannot grow)")


def test_kuberay_worker_groups_count_up_to_max_replicas():
    """Our RayJob's cluster, turned into an autoscaling config by Ray's own KubeRay reader."""
    from ray.autoscaler._private.kuberay.autoscaling_config import _derive_autoscaling_config_from_ray_cr

    docs = yaml.safe_load_all((REPO / "k8s" / "rayjob-tune-speaker.yaml").read_text())
    job = next(d for d in docs if d["kind"] == "RayJob")
    ray_cluster = {"apiVersion": "ray.io/v1", "kind": "RayCluster", "metadata": {"name": "c", "namespace": "n"},
                   "spec": job["spec"]["rayClusterSpec"]}
    config = _derive_autoscaling_config_from_ray_cr(ray_cluster)
    types, _ = node_types_from_autoscaling_config(config, [HEAD])
    gpu = next(t for t in types if t.resources.get("GPU"))
    assert gpu.max_nodes == 8 and gpu.resources["GPU"] == 4
    trainer = load_config("spk", preset_name="cluster").trainer
    concurrent, line = plan_concurrency(trainer, Capacity(tuple(types), "KubeRay", None, {"CPU": 8.0}))
    # 32 GPUs hold 16 two-worker trials, but 8 pods x 16 CPUs are all taken by their workers, and the head's 8
    # CPUs hold 8 drivers: at 15 trials one pod keeps 8 CPUs free, enough for the other 7 drivers
    assert concurrent == 15 and "cluster can grow to 32 GPUs; 0 now" in line


def test_fractional_gpus_only_for_one_worker_trials():
    with pytest.raises(ConfigError, match="only allowed for 1-worker trials"):
        load_config("spk", preset_name="cluster", overrides=["trainer.gpus_per_worker=0.5"])
    config = load_config("spk", preset_name="cluster", overrides=["trainer.gpus_per_worker=0.5", "trainer.workers=1"])
    assert worker_bundle(config.trainer)["GPU"] == 0.5
    with pytest.raises(ConfigError, match="worker_resources: 'GPU' is set by"):
        load_config("spk", preset_name="cluster", overrides=['trainer.worker_resources={"GPU": 1}'])
    with pytest.raises(ConfigError, match="expects a mapping"):
        load_config("spk", preset_name="cluster", overrides=["trainer.worker_resources=A100"])
