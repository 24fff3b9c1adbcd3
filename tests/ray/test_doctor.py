"""`dist-spk doctor` on a real two-node Ray cluster on this machine: every row, and exit 1 naming a blocker."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import CLI
from tests.local_cluster import LocalCluster

pytestmark = [pytest.mark.ray, pytest.mark.slow]

DRIVER_ROWS = ("experiment dir", "W&B", "hub token", "ray", "node types", "tune seg", "tune spk")
NODE_ROWS = ("python/torch", "CUDA", "audio decode", "shared storage")


def _rows(output: str) -> dict[tuple[str, str], str]:
    """(check, where) -> status, read back from the printed table."""
    rows = {}
    for line in output.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if len(cells) == 4 and cells[0] and cells[2] in ("ok", "warn", "FAIL"):
            rows[(cells[0], cells[1])] = cells[2]
    return rows


def test_doctor_checks_every_node_and_names_each_blocker(tmp_path):
    with LocalCluster(nodes=2, cpus_per_node=2) as cluster:
        env = {**cluster.env, "RAY_ADDRESS": f"127.0.0.1:{cluster.port}", "COLUMNS": "200"}
        env.pop("HF_TOKEN", None)
        healthy = subprocess.run([*CLI, "doctor", "--out", str(tmp_path / "exp"), "--preset", "local"], env=env,
                                 capture_output=True, text=True, timeout=600)
        broken_out = tmp_path / "a-file"
        broken_out.write_text("not a directory")
        broken = subprocess.run([*CLI, "doctor", "--out", str(broken_out), "--preset", "cluster"], env=env,
                                capture_output=True, text=True, timeout=600)
    assert healthy.returncode == 0, healthy.stdout[-4000:] + healthy.stderr[-4000:]
    rows = _rows(healthy.stdout)
    assert all((check, "driver") in rows for check in DRIVER_ROWS), rows
    nodes = {where for _, where in rows if where != "driver"}
    assert len(nodes) == 2  # both nodes, each checked by a task pinned to it
    assert all(rows[(check, node)] == "ok" for check in NODE_ROWS for node in nodes)
    assert rows[("W&B", "driver")] == "warn"  # no key here: offline, not a blocker
    assert "no blocker" in healthy.stdout and not list((tmp_path / "exp").iterdir())  # the probe is removed

    assert broken.returncode == 1, broken.stdout[-4000:] + broken.stderr[-4000:]
    rows = _rows(broken.stdout)
    assert rows[("experiment dir", "driver")] == "FAIL"
    assert rows[("hub token", "driver")] == "FAIL"  # the cluster preset starts from a gated hub model
    assert rows[("tune spk", "driver")] == "FAIL"  # GPU trials, and no node type here offers a GPU
    assert broken.stdout.strip().splitlines()[-1] == ("4 blocker(s): experiment dir on driver, hub token on driver, "
                                                      "tune seg on driver, tune spk on driver")
    assert "Traceback" not in broken.stderr
