"""The run directory every training run writes, whatever launched it.

::

    RUN/config.yaml           the resolved config
    RUN/metrics.jsonl         one JSON object per validation epoch, metric names as logged
    RUN/steps.jsonl           every trainer.log_every_n_steps optimizer steps: rank 0's training loss and lr;
                              append-only (readers tail it): after a resume, re-trained steps appear again
    RUN/checkpoints/last.ckpt the latest epoch (Lightning checkpoint, loadable by pyannote/our loaders)
    RUN/checkpoints/best.ckpt the epoch with the best objective
    RUN/startup.json          seconds from launch to the first training step, per stage (train/startup.py)
    RUN/summary.json          written when the run finishes: best epoch and its metrics

On a multi-node cluster, RUN must be on storage every node sees (rank 0 may run anywhere).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from dist_spk.errors import DistSpkError

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
    """Every epoch's metrics (or, ``name=STEPS_FILE``, every step row), in order (an empty list for a new run)."""
    path = Path(run_dir) / name
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _clean(value: float) -> float | None:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _append_row(path: Path, row: dict) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps({k: _clean(v) for k, v in row.items()}) + "\n")


def append_metrics(run_dir: Path, metrics: dict) -> None:
    _append_row(Path(run_dir) / METRICS_FILE, metrics)


def append_step(run_dir: Path, row: dict) -> None:
    _append_row(Path(run_dir) / STEPS_FILE, row)


class JsonlTail:
    """The complete rows another process has appended to a JSON-lines file since the last call.

    ``from_end``: skip what the file already holds (a resumed run whose earlier rows were streamed before).
    A line still being written (no newline yet) waits for the next call. The writer only appends.
    """

    def __init__(self, path: Path, *, from_end: bool = False):
        self.path = Path(path)
        self.offset = self.path.stat().st_size if from_end and self.path.is_file() else 0

    def rows(self) -> list[dict]:
        try:
            with self.path.open("rb") as handle:
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
    if path.is_file():
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def prepare_run_dir(run_dir: Path, *, resume: bool) -> Path | None:
    """Create ``run_dir``; return the checkpoint to resume from, if any.

    A run directory that already holds a run is refused unless ``resume`` is set, so two runs never
    mix their metrics.
    """
    run_dir = Path(run_dir)
    has_run = (run_dir / METRICS_FILE).is_file() or checkpoints_dir(run_dir).is_dir()
    if has_run and not resume:
        raise DistSpkError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out")
    checkpoints_dir(run_dir).mkdir(parents=True, exist_ok=True)
    last = last_checkpoint(run_dir)
    if resume and not last.is_file():
        if has_run:
            raise DistSpkError(f"{run_dir}: nothing to resume from ({last} is missing)")
        return None
    return last if resume else None


def resolve_checkpoint(path: Path) -> tuple[Path, Path | None]:
    """(checkpoint file, folder holding its config.yaml, or None) for a checkpoint, a run directory or
    a search's ``EXP/best``."""
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
