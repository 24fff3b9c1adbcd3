"""A Ray cluster that autoscales on this machine: Ray's fake multi-node provider (what Ray's autoscaler tests use).

``ray start --head --autoscaling-config=FILE`` with ``RAY_FAKE_CLUSTER=1`` runs Ray's real autoscaler (monitor.py)
against ``provider.type: fake_multinode``: pending resource demand makes it start new raylets on this machine, each
a node of the requested type with that type's resources. ``ray.cluster_utils.AutoscalingCluster`` wraps the same
thing but is unusable here: it reads an example YAML the 2.60 wheel does not ship, and it runs ``ray stop --force``,
which ends every Ray process on the machine (../shared/FINDINGS.md). So the config is written here, and stopping
kills exactly the processes that name this cluster's folder or carry the provider's node-id variable.

The provider's nodes share the head's temp dir (Ray's ``Node`` takes it from the head): fine for drivers that
connect with ``RAY_ADDRESS``, not for ``ray job submit --working-dir`` jobs (use tests/local_cluster.py for those).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from tests.local_cluster import StartsAndStops, kill_until_gone, processes_naming

BIN = Path(sys.executable).parent
PORT = 6379  # the fake provider joins its nodes here (provider.gcs_address; its default is <machine IP>:6379)


def autoscaling_config(*, head_cpus: int, worker_types: dict[str, dict]) -> dict:
    """A cluster-launcher config for the fake provider: ``worker_types`` maps a node type to
    ``{"resources": {...}, "min_workers": n, "max_workers": m}``."""
    types = {"ray.head.default": {"resources": {"CPU": head_cpus}, "node_config": {}, "max_workers": 0}}
    for name, spec in worker_types.items():
        types[name] = {"resources": spec["resources"], "node_config": {}, "min_workers": spec.get("min_workers", 0),
                       "max_workers": spec["max_workers"]}
    return {
        "cluster_name": "fake-autoscaling",
        "max_workers": sum(spec["max_workers"] for spec in worker_types.values()),
        "upscaling_speed": 2.0,
        "idle_timeout_minutes": 5,
        "provider": {"type": "fake_multinode", "gcs_address": f"127.0.0.1:{PORT}", "use_node_id_as_ip": True,
                     "disable_node_updaters": True, "disable_launch_config_check": True},
        "available_node_types": types,
        "head_node_type": "ray.head.default",
        "auth": {}, "docker": {}, "file_mounts": {}, "cluster_synced_files": [], "file_mounts_sync_continuously": False,
        "rsync_exclude": [], "rsync_filter": [], "initialization_commands": [], "setup_commands": [],
        "head_setup_commands": [], "worker_setup_commands": [], "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
    }


class FakeAutoscalingCluster(StartsAndStops):
    """``with FakeAutoscalingCluster(head_cpus=2, worker_types={...}) as cluster: ... cluster.address ...``."""

    def __init__(self, *, head_cpus: int, worker_types: dict[str, dict]):
        self.root = Path(tempfile.mkdtemp(prefix="fa", dir="/tmp"))  # short: Ray's unix sockets live below it
        self.config_file = self.root / "autoscaling.yaml"
        self.config_file.write_text(yaml.safe_dump(autoscaling_config(head_cpus=head_cpus,
                                                                       worker_types=worker_types)))
        self.head_cpus = head_cpus
        self.env = {**os.environ, "RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1",
                    "HOME": str(self.root), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        for name in ("RAY_ADDRESS", "WANDB_API_KEY", "RAY_AUTH_MODE"):
            self.env.pop(name, None)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{PORT}"

    def client_env(self) -> dict[str, str]:
        """The environment of a driver that joins this cluster (its token, if any, lives under HOME)."""
        return {**self.env, "RAY_ADDRESS": self.address}

    def start(self) -> FakeAutoscalingCluster:
        if _port_in_use(PORT):
            raise RuntimeError(f"port {PORT} is taken: another Ray head runs on this machine")
        head = subprocess.run(
            [str(BIN / "ray"), "start", "--head", f"--autoscaling-config={self.config_file}", f"--port={PORT}",
             "--node-ip-address=127.0.0.1", f"--num-cpus={self.head_cpus}", f"--temp-dir={self.root / 'ray'}",
             "--include-dashboard=true", "--dashboard-host=127.0.0.1", "--dashboard-port=0",
             "--disable-usage-stats"],
            env=self.env, capture_output=True, text=True, timeout=180)
        if head.returncode != 0:
            raise RuntimeError(head.stdout + head.stderr)
        return self

    def processes(self) -> list[int]:
        """Every live process of this cluster: those naming its folder, and the provider's nodes."""
        return processes_naming(str(self.root).encode(), b"RAY_OVERRIDE_NODE_ID_FOR_TESTING=")

    def stop(self) -> None:
        kill_until_gone(self.processes)
        shutil.rmtree(self.root, ignore_errors=True)


def _port_in_use(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
