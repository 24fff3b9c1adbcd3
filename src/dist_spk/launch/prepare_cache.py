"""The training cache prepared on a Ray cluster: a Ray Data job decodes the files across its nodes.

``dist-spk data prepare ROOT --out CACHE`` (and ``data.cache=CACHE`` on a run or a search, which builds it when
missing) decodes in this process on one machine. Joined to a cluster (``RAY_ADDRESS`` set, as ``ray job submit``
does, or ``--engine ray``), the decoding is a Ray Data ``map`` over the files (tasks of one CPU, a few blocks of
files per CPU), spread over the nodes (Ray Data's default ``SPREAD`` scheduling); the driver writes the decoded
samples into the one cache as they stream back, in the files' order (``preserve_order``), so the cache is byte for
byte the one a local preparation writes. Ray Data, not a pool of our own: it streams with back-pressure (the driver
never holds more than a few blocks of samples), retries a task whose node is lost, and scales with the cluster.

The cache folder is written by the driver: on a multi-node cluster it must be on storage every node sees (the same
rule as the experiment folder; checked before training starts), or on an object store (``s3://...``): prepared in the
driver's scratch, published, and fetched to each node's disk by its workers (:mod:`dist_spk.data.stored_cache`).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from dist_spk.data.training_cache import MANIFEST, decode_file, prepare, source_keys
from dist_spk.errors import ConfigError
from dist_spk.runs import storage

ENGINES = ("auto", "local", "ray")


def use_ray(engine: str) -> bool:
    """Whether ``engine`` means the Ray Data job: ``ray``, or ``auto`` when joined to a cluster (``RAY_ADDRESS``)."""
    if engine not in ENGINES:
        raise ConfigError(f"--engine {engine}: valid: {', '.join(ENGINES)}")
    return engine == "ray" or (engine == "auto" and bool(os.environ.get("RAY_ADDRESS")))


def _decode_row(row: dict) -> dict:
    import ray

    return {**decode_file(row["key"]), "node": ray.get_runtime_context().get_node_id()}


def decode_on_ray(keys: list[str], nodes: Counter) -> Iterator[dict]:
    """:func:`decode_file` of every key as a Ray Data job, yielded in ``keys`` order; ``nodes`` counts the files
    each node decoded."""
    import ray.data

    from dist_spk.launch.ray_train import connect_ray

    connect_ray()
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # the cache's file order, whichever task ends first
    context.enable_progress_bars = False  # prepare() draws one bar of its own
    context.print_on_execution_start = False
    # a few blocks per CPU: tasks long enough that Ray's per-task cost is small, enough of them to spread and balance
    blocks = min(len(keys), 4 * max(1, int(ray.cluster_resources().get("CPU", 1))))
    dataset = ray.data.from_items([{"key": key} for key in keys], override_num_blocks=blocks)
    for row in dataset.map(_decode_row, num_cpus=1).iter_rows():
        nodes[row["node"]] += 1
        yield row


def prepare_cache(sources: list[Path], out: str | Path, *, engine: str = "auto") -> Counter:
    """Write the training cache of ``sources`` at ``out`` (a folder, or an object-store URI: prepared in this node's
    scratch, then published), decoding here or on the cluster as ``engine`` says; the files decoded per node (one
    entry, ``"local"``, for this process)."""
    if storage.is_remote(out):
        from dist_spk.data.stored_cache import publish

        local = storage.scratch_dir(out, kind="caches")  # this node's copy, as a worker would fetch it
        if not (local / MANIFEST).is_file():  # what a cut-short fetch left
            shutil.rmtree(local)
        nodes = prepare_cache(sources, local, engine=engine)
        publish(local, storage.normalize(out))
        return nodes
    if not use_ray(engine):
        prepare(sources, out)
        return Counter({"local": len(source_keys(sources))})
    from dist_spk.console import internals_to

    nodes: Counter = Counter()
    with internals_to(prepare_log(out)):  # Ray's and Ray Data's own messages: to a file, not the console
        prepare(sources, out, decoded=decode_on_ray(source_keys(sources), nodes))
    return nodes


def prepare_log(out: str | Path) -> Path:
    """Where a preparation on Ray logs what Ray says: beside the cache (inside it, it would not be a cache); beside
    this node's copy of a stored cache."""
    folder = storage.scratch_dir(out, kind="caches") if storage.is_remote(out) else Path(out)
    return folder.parent / f"{folder.name}.prepare.log"
