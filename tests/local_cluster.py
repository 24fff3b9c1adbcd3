"""A real multi-node Ray cluster on this machine (`ray start --head` + `ray start --address`, loopback).

Everything it starts is identified by its own ``--temp-dir``, so stopping it ends exactly those
processes (``ray stop`` would end every Ray on the machine; killing ``ray start`` alone leaves
``gcs_server`` and ``raylet`` running: ../shared/FINDINGS.md). Ray 2.60's token authentication is on:
``HOME`` points into the cluster's folder, so the token it writes and reads is not the user's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.ports import free_port

BIN = Path(sys.executable).parent


def processes_naming(*markers: bytes) -> list[int]:
    """Every live process (but this one) whose command line or environment holds one of ``markers``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            text = (proc / "cmdline").read_bytes() + (proc / "environ").read_bytes()
        except OSError:
            continue
        if any(marker in text for marker in markers):
            found.append(int(proc.name))
    return found


def kill_until_gone(find, *, rounds: int = 5) -> None:
    """SIGKILL what ``find()`` lists until it lists nothing (Ray restarts some of its processes once)."""
    for _ in range(rounds):
        pids = find()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(1)


class StartsAndStops:
    """``with X(...) as cluster:``: ``start()`` on entry (``stop()`` if it fails half-way), ``stop()`` on exit."""

    def start(self):
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc) -> None:
        self.stop()


NODE_MARKER = "DIST_SPK_TEST_NODE"  # in the environment of every process a worker node starts


class LocalCluster(StartsAndStops):
    """``with LocalCluster(nodes=2, cpus_per_node=2) as cluster: cluster.submit(...)``."""

    def __init__(self, *, nodes: int = 2, cpus_per_node: int = 2, head_cpus: int | None = None,
                 extra_env: dict[str, str] | None = None):
        self.nodes = nodes
        self.cpus = cpus_per_node
        self.head_cpus = cpus_per_node if head_cpus is None else head_cpus  # 0: nothing but drivers on the head
        # short: Ray puts unix sockets under the temp dir, and their paths have a length limit
        self.root = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))
        self.temp_dir = self.root / "ray"
        self.port = free_port()
        self.dashboard_port = free_port()
        self.env = {**os.environ, "HOME": str(self.root), "RAY_AUTH_MODE": "token",
                    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.env.pop("RAY_ADDRESS", None)
        self.env.pop("WANDB_API_KEY", None)
        self.env.update(extra_env or {})

    @property
    def dashboard(self) -> str:
        return f"http://127.0.0.1:{self.dashboard_port}"

    def ray(self, *args: str, timeout: float = 120, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "ray"), *args], env=env or self.env, capture_output=True, text=True,
                              timeout=timeout)

    def start(self) -> LocalCluster:
        token = self.ray("get-auth-token", "--generate")  # into $HOME/.ray/auth_token (stdout not kept)
        assert token.returncode == 0, token.stderr
        self._start_head()
        for index in range(1, self.nodes):
            # a temp dir per node: nodes sharing one would share (and delete) each other's runtime-env files,
            # such as the job's working directory
            node = self.ray("start", f"--address=127.0.0.1:{self.port}", "--node-ip-address=127.0.0.1",
                            f"--num-cpus={self.cpus}", f"--temp-dir={self.root / f'node{index}'}",
                            "--disable-usage-stats", env={**self.env, NODE_MARKER: f"node{index}"})
            assert node.returncode == 0, node.stdout + node.stderr
        self._wait_for_nodes()
        return self

    def _start_head(self, attempts: int = 3) -> None:
        """``ray start --head``, again on new ports when it failed on one of its ports: a port picked free can still
        be taken before Ray binds it (no pick closes that race)."""
        failures = []
        for _ in range(attempts):
            head = self.ray("start", "--head", "--node-ip-address=127.0.0.1", f"--port={self.port}",
                            f"--num-cpus={self.head_cpus}", "--include-dashboard=true", "--dashboard-host=127.0.0.1",
                            f"--dashboard-port={self.dashboard_port}", f"--temp-dir={self.temp_dir}",
                            "--disable-usage-stats")
            if head.returncode == 0:
                return
            failures.append(head.stdout + head.stderr)
            if not any(f"{port}" in failures[-1] for port in (self.port, self.dashboard_port)):
                break
            kill_until_gone(self.processes, rounds=3)
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.port, self.dashboard_port = free_port(), free_port()
        raise AssertionError("\n--- ray start --head, again ---\n".join(failures))

    def _wait_for_nodes(self, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        status = None
        while time.time() < deadline:
            status = self.ray("status", f"--address=127.0.0.1:{self.port}")
            cpus = self.head_cpus + (self.nodes - 1) * self.cpus
            if status.returncode == 0 and f"{cpus}.0 CPU" in status.stdout:
                return
            time.sleep(2)
        raise AssertionError(f"the cluster never had {self.nodes} nodes: {status.stdout if status else ''}")

    def submit(self, entrypoint: list[str], *, runtime_env: str | None = None, working_dir: str = ".",
               timeout: float = 1500, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """``ray job submit`` (waits for the job, streaming its logs); returns the finished CLI process."""
        args = ["job", "submit", f"--address={self.dashboard}", f"--working-dir={working_dir}"]
        if runtime_env:
            args.append(f"--runtime-env={runtime_env}")
        deadline = time.time() + 300  # the head's job agent registers late on a loaded 2-core machine
        while True:
            job = subprocess.run([str(BIN / "ray"), *args, "--", *entrypoint], env={**self.env, **(env or {})},
                                 capture_output=True, text=True, timeout=timeout, cwd=cwd)
            # the job server answers before its agent is up: "No available agent to submit job, try again later"
            if "No available agent" not in job.stderr or time.time() > deadline:
                return job
            time.sleep(3)

    def job_status(self, submission_id: str) -> str:
        return self.ray("job", "status", f"--address={self.dashboard}", submission_id).stdout

    def processes(self) -> list[int]:
        """Every live process whose command line or environment names this cluster's folder."""
        return processes_naming(str(self.root).encode())

    def node_processes(self, index: int) -> list[int]:
        """The processes of worker node ``index`` (1..nodes-1): its raylet and everything the raylet started."""
        return processes_naming(f"{NODE_MARKER}=node{index}".encode())

    def node_of(self, pid: int) -> int | None:
        """The worker node a process runs on (None: the head)."""
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        marker = next((item for item in environ if item.startswith(f"{NODE_MARKER}=".encode())), None)
        return int(marker.split(b"=node")[1]) if marker else None

    def kill_node(self, index: int) -> None:
        """Worker node ``index`` disappears at once, as a preempted spot instance does."""
        kill_until_gone(lambda: self.node_processes(index))

    def stop(self) -> None:
        kill_until_gone(self.processes, rounds=3)
        shutil.rmtree(self.root, ignore_errors=True)
