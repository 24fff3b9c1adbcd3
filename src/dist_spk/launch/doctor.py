"""``dist-spk doctor``: is this cluster fit to run a search? One table, exit 1 on any blocker.

Run it right after ``ray up`` (``ray exec cluster.yaml 'dist-spk doctor --out /mnt/efs/exp'``), or submitted as a
job, or in the local test mode. It runs one small task on a node of every node type (asking the autoscaler for a
node where none is up, unless ``--no-scale``) and checks what a search needs there: torch, CUDA, NCCL and the
NVIDIA driver where the type offers GPUs, FFmpeg decoding through torchcodec (pyannote.audio 4's decoder), and
that the experiment directory is the same storage as the driver's. On the driver it checks the experiment
directory, W&B (key, reachability, login) and the model-hub token when the preset starts from a gated model.
"""

from __future__ import annotations

import contextlib
import io
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from dist_spk.errors import DistSpkError
from dist_spk.runs import storage

OK, WARN, FAIL = "ok", "warn", "FAIL"
DRIVER = "driver"
NODE_CHECKS = ("python/torch", "CUDA", "audio decode", "shared storage")


@dataclass(frozen=True)
class Row:
    check: str
    where: str
    status: str  # ok, warn (works, but look), FAIL (a search would fail or waste the cluster)
    detail: str


# ---------------------------------------------------------------------------------------------
# What runs on a node (plain functions: also callable in-process, for tests)
# ---------------------------------------------------------------------------------------------


def decode_check() -> str:
    """Write a short WAV and decode it the way pyannote.audio 4 does (torchcodec over FFmpeg's libraries)."""
    import tempfile

    import numpy as np
    import soundfile
    from torchcodec.decoders import AudioDecoder

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "probe.wav"
        soundfile.write(path, (0.1 * np.sin(np.arange(8000) / 5)).astype("float32"), 16000)
        samples = AudioDecoder(str(path)).get_all_samples()
    if samples.data.shape[-1] != 8000 or samples.sample_rate != 16000:
        raise RuntimeError(f"decoded {samples.data.shape[-1]} samples at {samples.sample_rate} Hz, not 8000 at 16000")
    return "torchcodec decoded a 16 kHz WAV"


def node_report(probe: str | None) -> dict[str, object]:
    """Everything a node can say about itself (runs as a Ray task on that node)."""
    import platform

    from dist_spk import __version__
    from dist_spk.cuda import cuda_report

    report: dict[str, object] = {"python": platform.python_version(), "dist_spk": __version__, **cuda_report()}
    try:
        report["decode"], report["decode_ok"] = decode_check(), True
    except Exception as err:  # noqa: BLE001 - missing FFmpeg libraries raise OSError/RuntimeError from torchcodec
        report["decode"], report["decode_ok"] = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}", False
    try:
        report["probe_seen"] = None if probe is None else storage.is_file(probe)
    except (OSError, DistSpkError):  # an object store this node has no credentials for
        report["probe_seen"] = False
    return report


def rows_for_node(where: str, report: dict[str, object], *, offers_gpu: bool, probe: str | None) -> list[Row]:
    """The node checks of one node type from its report."""
    from dist_spk.cuda import explain, min_driver_for

    rows = [Row("python/torch", where, OK, f"{report['node']}: Python {report['python']}, torch {report['torch']} "
                f"(CUDA {report['torch_cuda'] or 'none'}), dist_spk {report['dist_spk']}")]
    if not offers_gpu:
        rows.append(Row("CUDA", where, OK, "no GPU offered by this node type (CPU only)"))
    elif not report["cuda_available"]:
        rows.append(Row("CUDA", where, FAIL, f"GPUs offered but CUDA is not usable: {explain(report)}"))
    else:
        needed, driver = min_driver_for(report["torch_cuda"]), report["driver"]  # type: ignore[arg-type]
        old = needed is not None and driver is not None and int(str(driver).split(".")[0]) < needed
        gpus = report["gpus"]
        rows.append(Row("CUDA", where, FAIL if old else OK,
                        f"{len(gpus)} GPU(s) {', '.join(sorted(set(gpus)))}; driver {driver}"  # type: ignore[arg-type]
                        f"{f' < {needed} needed' if old else ''}; NCCL {report['nccl']}"))
    rows.append(Row("audio decode", where, OK if report["decode_ok"] else FAIL, str(report["decode"])))
    if probe is None:
        rows.append(Row("shared storage", where, WARN, "not checked (the experiment directory is not usable)"))
    elif report["probe_seen"]:
        rows.append(Row("shared storage", where, OK, f"sees {storage.join(probe, '..')}"))
    elif storage.is_remote(probe):
        rows.append(Row("shared storage", where, FAIL, f"cannot read {storage.join(probe, '..')}: give this node type "
                        "credentials for the store (an instance role, or the AWS_* variables in the runtime env)"))
    else:
        rows.append(Row("shared storage", where, FAIL, f"does not see {Path(probe).parent}: put --out on storage "
                        "every node mounts (NFS, EFS), or on an object store (s3://...)"))
    return rows


# ---------------------------------------------------------------------------------------------
# Driver-side checks
# ---------------------------------------------------------------------------------------------


def check_experiment_dir(out: str | Path) -> tuple[Row, str | None]:
    """The experiment directory (a path or an object-store URI) can be created and written here; returns (row, probe
    file for the nodes)."""
    where = storage.normalize(Path(out).expanduser() if not storage.is_remote(out) else out)
    probe = storage.join(where, f".doctor-probe-{uuid.uuid4().hex[:12]}")
    try:
        storage.write_text(probe, "dist_spk doctor\n")
    except (OSError, DistSpkError) as err:
        detail = getattr(err, "strerror", None) or str(err).splitlines()[0]
        return Row("experiment dir", DRIVER, FAIL, f"{where}: cannot write there ({detail})"), None
    return Row("experiment dir", DRIVER, OK, f"{where} is writable"), probe


def _remove_probe(probe: str | None) -> None:
    if probe:
        with contextlib.suppress(OSError, DistSpkError):
            storage.delete(probe)


def check_wandb() -> Row:
    """Whether the search will log online: a key, a route to the server, and the server accepting the key."""
    from dist_spk.tune.wandb_logging import reachable, server_url, wandb_key

    server = server_url()
    key, source = wandb_key()
    if os.environ.get("WANDB_MODE") == "offline" or not key:
        why = "WANDB_MODE=offline" if key else "no key (WANDB_API_KEY in the head's environment, or its `wandb login`)"
        return Row("W&B", DRIVER, WARN, f"offline: {why}; runs go to EXP/wandb (wandb sync them later)")
    if not reachable(server):
        return Row("W&B", DRIVER, WARN, f"key from {source}, but {server} is unreachable: a search logs offline")
    try:
        import wandb

        user = wandb.Api(api_key=key, timeout=20).viewer
        name = getattr(user, "username", None) or getattr(user, "entity", None) or "?"
    except Exception as err:  # noqa: BLE001 - a rejected key raises from wandb's API client
        return Row("W&B", DRIVER, FAIL, f"key from {source} was refused by {server}: {type(err).__name__}")
    return Row("W&B", DRIVER, OK, f"logged in to {server} as {name} (key from {source})")


def check_hub_token(preset: str) -> Row:
    """A preset that starts from a gated hub model needs its token on the driver (the only place it is used)."""
    from dist_spk.config import PRESETS
    from dist_spk.hub import hub_init

    needed = [(task, init, env) for task in PRESETS if preset in PRESETS[task]
              for init, env in [hub_init(PRESETS[task][preset]())] if init]
    if not needed:
        return Row("hub token", DRIVER, OK, f"not needed: preset {preset!r} starts from no hub model")
    task, init, env = needed[0]
    if os.environ.get(env):
        return Row("hub token", DRIVER, OK, f"{env} is set ({task} preset {preset!r} starts from {init})")
    from huggingface_hub import get_token

    if env == "HF_TOKEN" and get_token():  # `hf auth login` on this node: huggingface_hub reads it by itself
        return Row("hub token", DRIVER, OK, f"this node's hub login ({task} preset {preset!r} starts from {init})")
    return Row("hub token", DRIVER, FAIL, f"{task} preset {preset!r} starts from {init} (gated): log the head node in "
               f"once (`hf auth login`) or set {env} in its environment (a Kubernetes Secret); never as job metadata")


def check_search_shapes(preset: str, capacity) -> list[Row]:
    """How many trials of each task's preset this cluster runs at once, or why it can run none."""
    from dist_spk.config import PRESETS
    from dist_spk.launch.capacity import plan_concurrency

    rows = []
    for task, presets in PRESETS.items():
        if preset not in presets:
            continue
        try:
            _, line = plan_concurrency(presets[preset]().trainer, capacity)
        except DistSpkError as err:
            rows.append(Row(f"tune {task}", DRIVER, FAIL, f"preset {preset!r}: {err}"))
        else:
            rows.append(Row(f"tune {task}", DRIVER, OK, f"preset {preset!r}: {line}"))
    return rows


# ---------------------------------------------------------------------------------------------
# The whole check
# ---------------------------------------------------------------------------------------------


def run_doctor(*, out: str | Path, preset: str = "cluster", scale: bool = True, timeout: float = 900,
               progress=print) -> list[Row]:
    """Every check, driver side then one node of each node type; ``progress`` gets one line per step."""
    import ray

    from dist_spk.launch.capacity import read_cluster_capacity
    from dist_spk.launch.ray_train import connect_ray

    rows: list[Row] = []
    exp_row, probe = check_experiment_dir(out)
    rows += [exp_row, check_wandb(), check_hub_token(preset)]
    where = os.environ.get("RAY_ADDRESS") or "a local Ray (test mode)"
    try:
        connect_ray()
        capacity = read_cluster_capacity()
    except Exception as err:  # noqa: BLE001 - unreachable address, missing auth token: a row, not a traceback
        _remove_probe(probe)
        detail = str(err).strip().splitlines()[-1][:300] if str(err).strip() else type(err).__name__
        return [*rows, Row("ray", DRIVER, FAIL, f"cannot join {where}: {type(err).__name__}: {detail} (with token "
                           "auth, set RAY_AUTH_MODE=token and the token path)")]
    alive = [n for n in ray.nodes() if n.get("Alive")]
    rows.append(Row("ray", DRIVER, OK, f"{where}: Ray {ray.__version__}, {len(alive)} node(s) alive"))
    rows.append(Row("node types", DRIVER, OK, f"from {capacity.source}: "
                    + "; ".join(t.offers() for t in capacity.node_types)))
    rows += check_search_shapes(preset, capacity)
    try:
        for node_type in capacity.node_types:
            rows += _check_node_type(node_type, probe=probe, scale=scale, timeout=timeout, progress=progress)
    finally:
        _remove_probe(probe)
    return rows


def _check_node_type(node_type, *, probe: str | None, scale: bool, timeout: float, progress) -> list[Row]:
    """One task on an alive node of this type (pinned to it), else on a node the autoscaler adds for it."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    name = node_type.name
    offers_gpu = node_type.resources.get("GPU", 0) > 0
    task = ray.remote(num_cpus=0, max_retries=0)(node_report)
    if node_type.node_ids:
        options = {"scheduling_strategy": NodeAffinitySchedulingStrategy(node_type.node_ids[0], soft=False)}
    else:
        wanted = {k: v for k, v in node_type.resources.items() if k not in ("CPU", "memory", "object_store_memory")}
        if not scale:
            return [Row(check, name, WARN, "no node of this type is up; not checked (--no-scale)")
                    for check in NODE_CHECKS]
        if not wanted:
            return [Row(check, name, WARN, "no node of this type is up, and it has no resource that would make the "
                        "autoscaler start one for a task; not checked") for check in NODE_CHECKS]
        gpus = wanted.pop("GPU", 0)
        options = {"num_gpus": gpus, "resources": wanted or None}
        progress(f"[doctor] {name}: asking the autoscaler for a node (up to {timeout:g} s)")
    ref = task.options(**options).remote(probe)
    try:
        report = ray.get(ref, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        ray.cancel(ref, force=True)
        return [Row(check, name, FAIL, f"no node of this type came up within {timeout:g} s (see `ray status` and "
                    "the autoscaler's monitor.err)") for check in NODE_CHECKS]
    except ray.exceptions.RayError as err:
        detail = str(err).splitlines()[-1][:300] if str(err) else type(err).__name__
        return [Row(check, name, FAIL, f"the check task failed: {detail}") for check in NODE_CHECKS]
    progress(f"[doctor] {name}: checked on {report['node']}")
    return rows_for_node(name, report, offers_gpu=offers_gpu, probe=probe)


def render(rows: list[Row]) -> str:
    """The table, as text (rich draws it; plain when not on a terminal)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="dist-spk doctor", show_lines=False)
    for column in ("check", "where", "status", "detail"):
        table.add_column(column, overflow="fold")
    styles = {OK: "green", WARN: "yellow", FAIL: "bold red"}
    for row in rows:
        table.add_row(row.check, row.where, f"[{styles[row.status]}]{row.status}[/]", row.detail)
    console = Console(width=140, file=io.StringIO(), force_terminal=False, color_system=None)
    console.print(table)
    return console.file.getvalue()
