"""Where a run's start-up time goes, from launch to its first training step.

A trial of a search pays this once per start, and on a busy cluster it can be as long as several
epochs. The driver stamps the payload when it launches the run; the worker stamps each stage
(wall-clock ``time.time()``, the only clock driver and workers share); the epoch callback stamps the
first training step and reports the whole as ``startup_seconds`` with epoch 0. Stages:

- ``worker group``: launch -> the worker function runs (Ray Train controller, placement group,
  worker processes, torch process group; for ``dist-spk train`` also starting or joining Ray; a few
  milliseconds without Ray);
- ``imports``: torch, Lightning, pyannote and the worker loop's modules;
- ``data + model``: dataset, loaders, model, optimizer;
- ``trainer``: Lightning's set-up, DDP wrapping, checkpoint restore, the first batch.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

KEY = "startup"  # the payload entry holding the stamps
FILE = "startup.json"  # in the run directory: the latest start's breakdown
STAGES = ("worker group", "imports", "data + model", "trainer")
_MARKS = ("launched", "entered", "imported", "built", "first_step")  # the stamp that ends each stage, after launched


def launched(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload, stamped now (the driver calls this just before it starts the worker(s))."""
    return {**payload, KEY: {"launched": time.time()}}


def stamp(payload: dict[str, Any], mark: str) -> None:
    """Record ``mark`` (one of entered, imported, built, first_step) in a worker's copy of the payload."""
    if mark not in _MARKS[1:]:
        raise ValueError(f"unknown start-up mark {mark!r}")
    payload.setdefault(KEY, {}).setdefault(mark, time.time())


def forget_launch(payload: dict[str, Any]) -> None:
    """Drop the launch stamp: Ray Train gives a worker group it restarted after a failure the payload
    of the first start, and the time since that launch is not start-up (no ``total`` is reported)."""
    payload.get(KEY, {}).pop("launched", None)


def breakdown(stamps: dict[str, float]) -> dict[str, float]:
    """Seconds per stage (stages whose stamps are missing are left out) and ``total``."""
    seconds = {stage: round(stamps[end] - stamps[start], 2)
               for stage, start, end in zip(STAGES, _MARKS[:-1], _MARKS[1:], strict=True)
               if start in stamps and end in stamps}
    if "launched" in stamps and "first_step" in stamps:
        seconds["total"] = round(stamps["first_step"] - stamps["launched"], 2)
    return seconds


def describe(seconds: dict[str, float]) -> str:
    """One console line: ``[startup] 27.3 s to the first step: worker group 9.0 s, imports 7.1 s, ...``."""
    parts = ", ".join(f"{stage} {seconds[stage]:.1f} s" for stage in STAGES if stage in seconds)
    return f"[startup] {seconds.get('total', 0.0):.1f} s to the first step: {parts}"


def save(run_dir: Path, seconds: dict[str, float]) -> None:
    """``RUN/startup.json``: the latest start's seconds per stage (a resumed run overwrites it)."""
    (Path(run_dir) / FILE).write_text(json.dumps(seconds, indent=1) + "\n")
