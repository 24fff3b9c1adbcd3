"""Read back W&B offline run files (``run-*.wandb``), which wandb 0.31 no longer ships a reader for.

The file is a LevelDB-style log: a 7-byte header (``:W&B``, a 2-byte magic, a 1-byte version), then
32 KiB blocks of records, each ``crc32c (4) | length (2, little-endian) | type (1)`` and its payload;
types FULL=1, FIRST=2, MIDDLE=3, LAST=4 reassemble a payload that spans blocks. Payloads are
``wandb_internal_pb2.Record`` messages.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

HEADER = 7
BLOCK = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path, *, wait: float = 10.0) -> list:
    """Every record of a run file, once it holds the run's ``exit`` record (or after ``wait`` seconds: a running
    run's file). W&B's service writes the file after ``run.finish()`` has returned in this process: in full suite
    runs a file read at once was seen empty, and once without its run record."""
    deadline = time.monotonic() + wait
    while True:
        found = list(_parse(path))
        if any(record.WhichOneof("record_type") == "exit" for record in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def _parse(path: Path):
    from wandb.proto import wandb_internal_pb2

    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    position, pending = HEADER, b""
    while position + 7 <= len(data):
        left_in_block = BLOCK - position % BLOCK
        if left_in_block < 7:  # a block's tail too short for a header is padding
            position += left_in_block
            continue
        _, length, kind = struct.unpack("<IHB", data[position:position + 7])
        payload = data[position + 7:position + 7 + length]
        position += 7 + length
        if kind == 0 and length == 0:
            continue
        if kind in (FULL, FIRST):
            pending = payload
        else:
            pending += payload
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def history(path: Path) -> list[dict]:
    """Every logged history row: {key: value}."""
    rows = []
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            rows.append({"/".join(item.nested_key) or item.key: json.loads(item.value_json)
                         for item in record.history.item})
    return rows


def config(path: Path) -> dict:
    """The run's config: what ``wandb.init(config=)`` put in the run record, then every config update."""
    values = {}
    for record in records(path):
        kind = record.WhichOneof("record_type")
        updates = record.run.config.update if kind == "run" else record.config.update if kind == "config" else []
        for item in updates:
            values["/".join(item.nested_key) or item.key] = json.loads(item.value_json)
    return values


def summary(path: Path) -> dict:
    """The run's final summary: every summary update applied in order."""
    values = {}
    for record in records(path):
        if record.WhichOneof("record_type") == "summary":
            for item in record.summary.update:
                values["/".join(item.nested_key) or item.key] = json.loads(item.value_json)
    return values


def run_info(path: Path):
    """The run record (run_id, display_name, run_group, job_type, sweep_id)."""
    found = [r.run for r in records(path) if r.WhichOneof("record_type") == "run"]
    assert found, f"{path}: no run record"
    return found[0]


def kinds(path: Path) -> list[str]:
    """Every record's type, in order (a complete file ends with ``exit``, then its final summary/telemetry)."""
    return [record.WhichOneof("record_type") for record in records(path)]


def trial_runs(exp: Path) -> list[Path]:
    """The run files of a search's trials (not its experiment-level run)."""
    files = sorted(Path(exp, "wandb").glob("offline-run-*/run-*.wandb"))
    runs = [path for path in files if run_info(path).job_type == "trial"]
    for path in runs:  # each one complete: it parses to the end and holds W&B's exit record
        assert "exit" in kinds(path), f"{path} has no exit record"
    return runs
