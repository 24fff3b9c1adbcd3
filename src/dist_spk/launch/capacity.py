"""How many trials a cluster can run at once, counting the nodes its autoscaler may still add.

A cluster brought up by ``ray up cluster.yaml`` (or KubeRay) starts its GPU worker types at ``min_workers: 0``:
sizing concurrency from the nodes alive at submit time would refuse the search (no GPU yet), or freeze it at
today's size so the autoscaler never grows toward ``max_workers``. So the search asks the cluster what it can
*become*: its node types, each with its resources and how many nodes of it may exist. Trials beyond what is alive
stay pending, and their pending resource requests are what make the autoscaler add nodes.

Where the node types come from, first found wins (:func:`read_cluster_capacity`):

1. the cluster config in the GCS (autoscaler v2 platforms publish it; Ray Train reads the same thing),
2. KubeRay: the RayCluster resource, read with Ray's own KubeRay config reader (needs the head pod's service
   account, which the in-tree autoscaler already uses),
3. the autoscaler's config file on the head (the ``--autoscaling-config`` of Ray's monitor process; on a
   ``ray up`` cluster that is ``~/ray_bootstrap_config.yaml``),
4. otherwise the cluster cannot grow: the alive nodes are all there is.

The counting itself (:func:`plan_concurrency`) is plain Python on plain dicts, tested without Ray.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from dist_spk.config.tasks import TrainerConfig
from dist_spk.errors import DistSpkError

DRIVER_CPUS = 1.0  # each trial's driver holds one CPU outside its worker group (FINDINGS: Ray 2.60)
MAX_NODES_COUNTED = 1000  # an unbounded node type (KubeRay maxReplicas unset) counts as this many nodes
_IGNORED = ("memory", "object_store_memory")  # Ray adds these to every node; trials do not ask for them


@dataclass(frozen=True)
class NodeType:
    """One kind of node: its resources, and how many of it exist now and may exist at most."""

    name: str
    resources: dict[str, float]
    max_nodes: int
    alive: int = 0
    head: bool = False
    node_ids: tuple[str, ...] = ()  # the alive nodes of this type (Ray node ids), when read from a live cluster

    def offers(self) -> str:
        shown = dict(sorted(_clean(self.resources).items()))
        count = f"up to {self.max_nodes} node(s)" if self.max_nodes < MAX_NODES_COUNTED else "unbounded"
        return f"{self.name} {_fmt(shown)} ({count}, {self.alive} alive)"


@dataclass(frozen=True)
class Capacity:
    """What a cluster is and can become."""

    node_types: tuple[NodeType, ...]
    source: str  # where the node types were read: "autoscaler config (...)" or "alive nodes"
    max_worker_nodes: int | None = None  # the cluster-wide cap on worker nodes (cluster.yaml max_workers)
    now: dict[str, float] = field(default_factory=dict)  # ray.cluster_resources() at submit time

    @property
    def can_grow(self) -> bool:
        return any(t.max_nodes > t.alive for t in self.node_types)

    def largest_nodes(self, bundle: dict[str, float] | None = None) -> list[dict[str, float]]:
        """Every node of the cluster at its largest, as resource dicts.

        The cluster-wide cap on worker nodes goes first to the node types that hold ``bundle`` (a trial's worker).
        """
        nodes: list[dict[str, float]] = []
        budget = self.max_worker_nodes
        useful = sorted(self.node_types, key=lambda t: -bundles_on(t.resources, bundle or {}))
        for node_type in useful:
            count = min(node_type.max_nodes, MAX_NODES_COUNTED)
            if budget is not None and not node_type.head:
                count = max(node_type.alive, min(count, budget))
                budget = max(0, budget - count)
            nodes += [node_type.resources] * count
        return nodes

    def total_at_largest(self, bundle: dict[str, float] | None = None) -> dict[str, float]:
        total: dict[str, float] = {}
        for node in self.largest_nodes(bundle):
            for key, value in node.items():
                total[key] = total.get(key, 0.0) + value
        return total


def _fmt(resources: dict[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in resources.items()) + "}"


def worker_bundle(trainer: TrainerConfig) -> dict[str, float]:
    """The resources of one Ray Train worker of a trial (what ``ScalingConfig.resources_per_worker`` asks for)."""
    bundle = {"CPU": float(trainer.cpus_per_worker)}
    if trainer.use_gpu:
        bundle["GPU"] = float(trainer.gpus_per_worker)
    bundle.update(trainer.worker_resources)
    return bundle


def trial_need(trainer: TrainerConfig, *, driver_cpus: float = DRIVER_CPUS) -> dict[str, float]:
    """What one trial occupies in all: its driver CPU plus every worker bundle."""
    need = {"CPU": driver_cpus}
    for key, value in worker_bundle(trainer).items():
        need[key] = need.get(key, 0.0) + value * max(trainer.workers, 1)
    return need


def bundles_on(node: dict[str, float], bundle: dict[str, float]) -> int:
    """How many copies of ``bundle`` fit on one node."""
    if not bundle:
        return 0
    return min(math.floor(node.get(k, 0.0) / v + 1e-9) for k, v in bundle.items() if v > 0)


def trials_that_fit(nodes: list[dict[str, float]], trainer: TrainerConfig, *, driver_cpus: float = DRIVER_CPUS
                    ) -> int:
    """Most trials these nodes hold at once: every worker bundle on one node, every driver on one free CPU.

    Worker bundles go first to the nodes that hold the most of them (a trial's bundles may span nodes, as
    Ray Train's placement group allows); each trial's driver then needs one whole CPU left on some node.
    """
    bundle = worker_bundle(trainer)
    workers = max(trainer.workers, 1)
    slots = sorted(((bundles_on(n, bundle), n) for n in nodes), key=lambda pair: -pair[0])
    for trials in range(sum(s for s, _ in slots) // workers, 0, -1):
        left = trials * workers
        spare_cpus = 0
        for fits, node in slots:
            used = min(fits, left)
            left -= used
            spare_cpus += math.floor(node.get("CPU", 0.0) - used * bundle.get("CPU", 0.0) + 1e-9)
        if spare_cpus >= trials * driver_cpus:
            return trials
    return 0


def plan_concurrency(trainer: TrainerConfig, capacity: Capacity, *, requested: int = 0,
                     driver_cpus: float = DRIVER_CPUS) -> tuple[int, str]:
    """(trials at once, the line that says why) for this trial shape on this cluster, or one clear error.

    Concurrency counts the cluster at its largest (every node type at its maximum), so pending trials make the
    autoscaler add nodes; ``requested`` (``search.max_concurrent``, ``--max-concurrent``) caps it. Only a trial
    shape that no node type can ever hold is refused, naming the node types and what each offers.
    ``driver_cpus=0`` for a single training run, whose driver is the calling process.
    """
    bundle = worker_bundle(trainer)
    offers = "; ".join(t.offers() for t in capacity.node_types)
    if not any(bundles_on(t.resources, bundle) for t in capacity.node_types):
        raise DistSpkError(f"a trial's worker needs {_fmt(bundle)} and no node type of this cluster can ever hold "
                           f"it (node types, from {capacity.source}: {offers}); lower trainer.cpus_per_worker / "
                           "gpus_per_worker, fix trainer.worker_resources, or add a node type that offers it")
    fits = trials_that_fit(capacity.largest_nodes(bundle), trainer, driver_cpus=driver_cpus)
    if fits < 1:
        raise DistSpkError(f"one trial needs {_fmt(trial_need(trainer, driver_cpus=driver_cpus))} "
                           f"({driver_cpus:g} driver CPU + {trainer.workers} "
                           f"worker(s) of {_fmt(bundle)}) but this cluster at its largest holds no such trial "
                           f"(node types, from {capacity.source}: {offers}); use fewer --workers-per-trial")
    concurrent = min(fits, requested) if requested else fits
    unit = "GPU" if trainer.use_gpu else "CPU"
    largest, now = capacity.total_at_largest(bundle).get(unit, 0.0), capacity.now.get(unit, 0.0)
    if capacity.can_grow:
        why = f"cluster can grow to {largest:g} {unit}s; {now:g} now"
    else:
        why = f"{now:g} {unit}s, the cluster cannot grow"
    if requested and requested < fits:
        why += f"; capped by max_concurrent={requested}"
    return concurrent, f"{concurrent} trial(s) at once ({why})"


# ---------------------------------------------------------------------------------------------
# Reading a live cluster (Ray from here on)
# ---------------------------------------------------------------------------------------------


def node_types_from_autoscaling_config(config: dict, alive: list[dict[str, float]], *,
                                       ids: list[str] | None = None) -> tuple[list[NodeType], int | None]:
    """(node types, cap on worker nodes) of a cluster-launcher or KubeRay autoscaling config.

    Each alive node (``ids``: their Ray node ids, in the same order) counts for the type it belongs to
    (:func:`type_of_node`); a node that fits no type (joined by hand) becomes a type of its own.
    """
    specs = config.get("available_node_types") or {}
    head = config.get("head_node_type")
    resources = {name: {k: float(v) for k, v in (spec.get("resources") or {}).items()} for name, spec in specs.items()}
    members: dict[str, list[str]] = {name: [] for name in specs}
    strays: list[tuple[str, dict[str, float]]] = []
    for index, node in enumerate(alive):
        node_id = ids[index] if ids else f"alive-{index}"
        name = type_of_node(node, resources, head)
        if name is None:
            strays.append((node_id, _clean(node)))
        else:
            members[name].append(node_id)
    types = []
    for name, spec in specs.items():
        most = 1 if name == head else int(spec.get("max_workers", config.get("max_workers", 0)))
        most = MAX_NODES_COUNTED if most < 0 else most
        count = len(members[name])
        types.append(NodeType(name, resources[name], max(most, count), count, head=name == head,
                              node_ids=tuple(members[name]) if ids else ()))
    types += [NodeType(f"unlisted-node-{i}", node, 1, alive=1, node_ids=(node_id,) if ids else ())
              for i, (node_id, node) in enumerate(strays)]
    cap = config.get("max_workers")
    return types, int(cap) if cap is not None and int(cap) >= 0 else None


def _clean(node: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in node.items() if not k.startswith("node:") and k not in _IGNORED}


def type_of_node(node: dict[str, float], types: dict[str, dict[str, float]], head: str | None) -> str | None:
    """The node type an alive node belongs to: the head by Ray's head marker; a worker by the type whose
    distinguishing resources (all but CPU) it carries, the most specific such type winning."""
    if "node:__internal_head__" in node:
        return head
    have = _clean(node)
    best, best_score = None, -1
    for name, resources in types.items():
        wanted = {k: v for k, v in resources.items() if k != "CPU"}
        if name == head or not all(have.get(k, 0.0) >= v for k, v in wanted.items()):
            continue
        if len(wanted) > best_score:
            best, best_score = name, len(wanted)
    return best


def node_types_from_cluster_config_proto(proto, alive: list[dict[str, float]], *, ids: list[str] | None = None
                                         ) -> list[NodeType]:
    """Node types of the GCS's ``autoscaler_pb2.ClusterConfig`` (node group configs with min/max counts)."""
    config = {"available_node_types": {}, "head_node_type": None}
    for group in proto.node_group_configs:
        most = group.max_count if group.max_count >= 0 else MAX_NODES_COUNTED
        config["available_node_types"][group.name] = {"resources": dict(group.resources), "max_workers": most}
    types, _ = node_types_from_autoscaling_config(config, alive, ids=ids)  # the proto has no cap on worker nodes
    return types


def _autoscaling_config_on_head() -> tuple[dict | None, str]:
    """Runs on the head node: the autoscaler's config from KubeRay's RayCluster or the monitor's config file."""
    import os
    from pathlib import Path

    import yaml

    reason = ""
    name, namespace = os.environ.get("RAY_CLUSTER_NAME"), os.environ.get("RAY_CLUSTER_NAMESPACE")
    if name and namespace:  # KubeRay sets both in its pods
        try:
            from ray.autoscaler._private.kuberay.autoscaling_config import AutoscalingConfigProducer

            return AutoscalingConfigProducer(name, namespace)(), f"KubeRay RayCluster {namespace}/{name}"
        except Exception as err:  # noqa: BLE001 - no API access for this pod's service account
            reason = f"KubeRay RayCluster {namespace}/{name} unreadable ({type(err).__name__})"
    import ray

    gcs = f"--gcs-address={ray._private.worker.global_worker.node.gcs_address}"  # this cluster's monitor only
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if gcs not in args or not any(a.endswith("autoscaler/_private/monitor.py") for a in args):
            continue
        for arg in args:
            if arg.startswith("--autoscaling-config="):
                path = Path(os.path.expanduser(arg.split("=", 1)[1]))
                try:
                    return yaml.safe_load(path.read_text()), f"autoscaler config {path}"
                except (OSError, yaml.YAMLError) as err:
                    reason = f"autoscaler config {path} unreadable ({err})"
    return None, reason


def read_cluster_capacity() -> Capacity:
    """The connected cluster's node types (see the module docstring for where they are read from)."""
    import ray

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    alive, ids = [n["Resources"] for n in nodes], [n["NodeID"] for n in nodes]
    now = {k: float(v) for k, v in ray.cluster_resources().items()}
    try:
        from ray._private.state import state

        proto = state.get_cluster_config()
    except Exception:  # an older GCS without the call
        proto = None
    if proto is not None and proto.node_group_configs:
        types = node_types_from_cluster_config_proto(proto, alive, ids=ids)
        return Capacity(tuple(types), "the GCS cluster config", None, now)
    on_head = ray.remote(num_cpus=0, resources={"node:__internal_head__": 0.001}, max_retries=0)(
        _autoscaling_config_on_head)
    try:
        config, source = ray.get(on_head.remote(), timeout=60)
    except Exception as err:  # noqa: BLE001 - no head marker (Ray client), or the task failed: no autoscaler info
        config, source = None, f"head not readable ({type(err).__name__})"
    if config:
        types, cap = node_types_from_autoscaling_config(config, alive, ids=ids)
        return Capacity(tuple(types), source, cap, now)
    types = [NodeType(f"node-{i}", _clean(n), 1, alive=1, head="node:__internal_head__" in n, node_ids=(node_id,))
             for i, (n, node_id) in enumerate(zip(alive, ids, strict=True))]
    return Capacity(tuple(types), "alive nodes" + (f"; {source}" if source else ""), None, now)
