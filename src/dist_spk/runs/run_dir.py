"""The run directory every training run writes, whatever launched it.

::

    RUN/config.yaml           the resolved config
    RUN/metrics.jsonl         one JSON object per validation epoch, metric names as logged
    RUN/steps.jsonl           every trainer.log_every_n_steps optimizer steps: rank 0's training loss and lr;
                              append-only (readers tail it): after a resume, re-trained steps appear again
    RUN/checkpoints/last.ckpt the latest epoch (Lightning checkpoint, loadable by pyannote/our loaders)
    RUN/checkpoints/best.ckpt the epoch with the best objective
    RUN/checkpoints/last.json, best.json   under Ray: which of Ray Train's uploaded checkpoints last/best are
                              (``checkpoint``: its path relative to RUN/checkpoints; ``epoch``; the objective).
                              Each epoch's checkpoint is stored once, by Ray; on a local disk last.ckpt and
                              best.ckpt are symbolic links to it, on an object store only the .json pointers exist
    RUN/startup.json          seconds from launch to the first training step, per stage (runs/startup.py)
    RUN/summary.json          written when the run finishes: best epoch and its metrics
    RUN/starts.jsonl          a search's trial: each start, its Ray Train run, the checkpoint it continued from

On a multi-node cluster, RUN is on storage every node sees (rank 0 may run anywhere): a shared file system, or
an object store (``s3://...``, :mod:`dist_spk.runs.storage`) that rank 0 publishes its files to.
"""

from __future__ import annotations

import json
import math
import os
import posixpath
from pathlib import Path

from dist_spk.errors import DistSpkError
from dist_spk.runs import storage
from dist_spk.runs.files import write_text

METRICS_FILE = "metrics.jsonl"
STEPS_FILE = "steps.jsonl"
CHECKPOINTS = "checkpoints"


def checkpoints_dir(run_dir: Path) -> Path:
    return Path(run_dir) / CHECKPOINTS


def last_checkpoint(run_dir: Path) -> Path:
    return checkpoints_dir(run_dir) / "last.ckpt"


def best_checkpoint(run_dir: Path) -> Path:
    return checkpoints_dir(run_dir) / "best.ckpt"


def read_metrics(run_dir: Path, *, name: str = METRICS_FILE) -> list[dict]:
    """Every epoch's metrics (or, ``name=STEPS_FILE``, every step row), in order (an empty list for a new run).

    A torn last line (a process killed, or a disk full, mid-append) is left out: that epoch was never completely
    recorded, so a resume trains it again. A damaged line before the last is one clear error naming the line.
    """
    path = Path(run_dir) / name
    if not path.is_file():
        return []
    text = path.read_text(errors="replace")
    lines = text.splitlines()
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            if number == len(lines) and not text.endswith("\n"):
                break  # torn: the writer never finished this row
            raise DistSpkError(f"{path}:{number}: not a JSON object ({line[:80]!r}); the run's record is "
                               "damaged") from None
    return rows


def _clean(value: float) -> float | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _append_row(path: Path, row: dict) -> None:
    _drop_torn_tail(path)
    with path.open("a") as handle:
        handle.write(json.dumps({k: _clean(v) for k, v in row.items()}) + "\n")


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line that has no newline (a killed writer's half row), so the next row starts a line of its own."""
    if not path.is_file():
        return
    with path.open("rb+") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        start = max(0, size - (1 << 20))  # a row is far shorter than 1 MiB
        handle.seek(start)
        tail = handle.read()
        handle.truncate(start + tail.rfind(b"\n") + 1)  # rfind -1 (no complete row in the tail): cut it all


def append_metrics(run_dir: Path, metrics: dict) -> None:
    _append_row(Path(run_dir) / METRICS_FILE, metrics)


def append_step(run_dir: Path, row: dict) -> None:
    _append_row(Path(run_dir) / STEPS_FILE, row)


class JsonlTail:
    """The complete rows another process has appended to a JSON-lines file since the last call.

    ``location``: a path or an object-store URI (read from the offset on, a ranged GET). ``from_end``: skip what the
    file already holds (a resumed run whose earlier rows were streamed before). A line still being written (no
    newline yet) waits for the next call. The writer only appends (or, on a store, re-uploads the grown file).
    """

    def __init__(self, location: str | Path, *, from_end: bool = False):
        self.filesystem, self.path = storage.filesystem(location)
        self.offset = 0
        if from_end:
            self.offset = max(self.filesystem.get_file_info(self.path).size or 0, 0)

    def rows(self) -> list[dict]:
        try:
            with self.filesystem.open_input_file(self.path) as handle:
                handle.seek(self.offset)
                data = handle.read()
        except OSError:  # not written yet
            return []
        complete = data.rfind(b"\n") + 1
        self.offset += complete
        return [json.loads(line) for line in data[:complete].splitlines() if line.strip()]


def keep_epochs_before(run_dir: Path, epoch: int) -> None:
    """Drop metrics of epochs >= ``epoch``: after a resume they are trained again, never listed twice."""
    rows = [row for row in read_metrics(run_dir) if row.get("epoch", -1) < epoch]
    path = Path(run_dir) / METRICS_FILE
    if path.is_file():  # a crash leaves the old file or the new one
        write_text(path, "".join(json.dumps(row) + "\n" for row in rows))


def prepare_run_dir(location: str | Path, *, resume: bool) -> str | None:
    """Create the run directory at ``location`` (a path or an object-store URI); return the checkpoint to resume
    from, if any (a local path, or the location on the store that ``checkpoints/last.json`` points at).

    A run directory that already holds a run is refused unless ``resume`` is set, so two runs never
    mix their metrics.
    """
    location = storage.normalize(location)
    has_run = any(storage.exists(storage.join(location, name)) for name in (METRICS_FILE, CHECKPOINTS))
    if has_run and not resume:
        raise DistSpkError(f"{location} already holds a run; pass --resume to continue it, or choose another --out")
    if not storage.is_remote(location):
        checkpoints_dir(Path(location)).mkdir(parents=True, exist_ok=True)
    pointer = read_pointer(location, "last")
    last = pointer["location"] if pointer else storage.join(location, CHECKPOINTS, "last.ckpt")
    if resume and not storage.is_file(last):
        if has_run:
            raise DistSpkError(f"{location}: nothing to resume from ({last} is missing)")
        return None
    return last if resume else None


def point_checkpoint(run_location: str, name: str, checkpoint_path: str, **record) -> None:
    """Record that checkpoint ``name`` (last, best) of the run at ``run_location`` is the file ``checkpoint_path``
    (a path in the run's file system, as Ray reports it): ``checkpoints/<name>.json``, and on a local disk the link
    ``checkpoints/<name>.ckpt``. Relative, so a moved experiment keeps its pointers."""
    _, run_path = storage.filesystem(run_location)
    relative = posixpath.relpath(checkpoint_path, posixpath.join(run_path, CHECKPOINTS))
    storage.write_text(storage.join(run_location, CHECKPOINTS, f"{name}.json"),
                       json.dumps({"checkpoint": relative, **record}) + "\n")
    if not storage.is_remote(run_location):
        link = checkpoints_dir(Path(run_location)) / f"{name}.ckpt"
        partial = link.with_name(f".{name}.ckpt.link")
        partial.unlink(missing_ok=True)
        partial.symlink_to(relative)
        partial.replace(link)


class CheckpointPointers:
    """A run's ``last`` and ``best`` pointers, moved as each epoch's checkpoint lands (a Ray Train run's controller
    callback and an in-process trial share it). A tie moves ``best`` to the newer checkpoint: Ray keeps the later of
    equal scores and deletes the other; a restarted run keeps its earlier best."""

    def __init__(self, run_location: str, objective: str) -> None:
        self.run_location, self.objective = run_location, objective
        best = read_pointer(run_location, "best")
        self.best = best.get(objective) if best else None

    def point(self, checkpoint_file: str, row: dict) -> None:
        record = {"epoch": row.get("epoch"), self.objective: row.get(self.objective)}
        point_checkpoint(self.run_location, "last", checkpoint_file, **record)
        value = row.get(self.objective)
        if value is not None and not math.isnan(value) and (self.best is None or value <= self.best):
            self.best = value
            point_checkpoint(self.run_location, "best", checkpoint_file, **record)


def read_pointer(run_location: str, name: str) -> dict | None:
    """``checkpoints/<name>.json`` of a run under Ray, with ``location`` (the checkpoint's), or None."""
    pointer = storage.join(run_location, CHECKPOINTS, f"{name}.json")
    if not storage.is_file(pointer):
        return None
    record = json.loads(storage.read_text(pointer))
    return {**record, "location": storage.join(run_location, CHECKPOINTS, record["checkpoint"])}


def fetch_checkpoint(location: str) -> tuple[Path, Path | None]:
    """:func:`resolve_checkpoint` for a checkpoint, run directory or ``EXP/best`` on an object store: the checkpoint
    (and its config.yaml) fetched into local scratch."""
    local = storage.scratch_dir(location, kind="fetched")
    bare = location.split("?")[0]
    if bare.endswith(".ckpt"):  # the file; its run is the folder above checkpoints/, or its own folder (EXP/best)
        in_run = posixpath.basename(posixpath.dirname(bare)) == CHECKPOINTS
        owner = storage.join(location, *(("..", "..") if in_run else ("..",)))
        pointer = read_pointer(owner, posixpath.basename(bare)[: -len(".ckpt")]) if in_run else None
        checkpoint = pointer["location"] if pointer and not storage.is_file(location) else location
    else:
        owner = location
        pointer = read_pointer(location, "best")
        checkpoint = pointer["location"] if pointer else storage.join(location, "checkpoint.ckpt")
        if not storage.is_file(checkpoint):
            raise DistSpkError(f"{location}: neither checkpoints/best.json (a run) nor checkpoint.ckpt (EXP/best) here")
    (local / "checkpoint.ckpt").write_bytes(storage.read_bytes(checkpoint))
    config = storage.join(owner, "config.yaml")
    if storage.is_file(config):
        (local / "config.yaml").write_bytes(storage.read_bytes(config))
        return local / "checkpoint.ckpt", local
    (local / "config.yaml").unlink(missing_ok=True)
    return local / "checkpoint.ckpt", None


def resolve_checkpoint(path: str | Path) -> tuple[Path, Path | None]:
    """(checkpoint file, folder holding its config.yaml, or None) for a checkpoint, a run directory or
    a search's ``EXP/best``, on a local disk or an object store (then fetched into local scratch)."""
    if storage.is_remote(path):
        return fetch_checkpoint(str(path))
    path = Path(path)
    if path.is_dir():
        for checkpoint in (best_checkpoint(path), path / "checkpoint.ckpt"):
            if checkpoint.is_file():
                return checkpoint, path if (path / "config.yaml").is_file() else None
        raise DistSpkError(f"{path}: neither checkpoints/best.ckpt (a run) nor checkpoint.ckpt (EXP/best) here")
    if not path.is_file():
        raise DistSpkError(f"{path}: no such checkpoint or run directory")
    owner = path.parent.parent if path.parent.name == CHECKPOINTS else path.parent
    return path, owner if (owner / "config.yaml").is_file() else None
