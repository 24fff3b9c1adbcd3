"""ASHA vs FIFO on the same 8-trial search, and each trial's fixed start-up cost.

The same grid (4 learning rates x 2 margins = 8 speaker-encoder trials, 8 epochs each, local preset)
runs under ASHA (grace 1 epoch, reduction factor 3) and under FIFO.

- ``asha_compute_fraction`` = trial-epochs ASHA trained / trial-epochs FIFO trained.
- ``asha_best_metric_gap`` = (best EER under ASHA - best EER under FIFO) / best EER under FIFO.
- ``trial_overhead_s``: per trial, Tune's ``time_total_s`` at its first report (trial start to the
  end of epoch 0) minus that epoch's own ``epoch_seconds`` (first training step to the end of epoch 0):
  the time from trial start to the first training step. Median over the 16 trials.

    python -m bench.asha
"""

from __future__ import annotations

import csv
import json
import shutil
import statistics
from pathlib import Path

from bench.common import WORK, corpus, metrics, record, run

SPACE = """parameters:
  optim.lr: {grid: [1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2]}
  head.margin: {grid: [0.1, 0.3]}
"""
EPOCHS = 8


def search(scheduler: str) -> tuple[list[dict], Path, float]:
    exp = WORK / f"search-{scheduler}"
    shutil.rmtree(exp, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    space = WORK / "asha-space.yaml"
    space.write_text(SPACE)
    wall = run(["tune", "spk", "--data", str(corpus() / "spk"), "--out", str(exp), "--space", str(space),
                "--num-samples", "1", "--scheduler", scheduler, "--set", f"trainer.epochs={EPOCHS}",
                "--set", "search.grace_period=1", "--set", "search.reduction_factor=3"])
    with (exp / "summary.csv").open() as handle:
        return list(csv.DictReader(handle)), exp, wall


def overheads(exp: Path) -> list[float]:
    values = []
    for result in (exp / "tune").glob("*/result.json"):
        first = json.loads(result.read_text().splitlines()[0])
        trial_dir = exp / "trials" / first["trial_id"]
        rows = metrics(trial_dir) if (trial_dir / "metrics.jsonl").is_file() else []
        if rows:
            values.append(first["time_total_s"] - rows[0]["epoch_seconds"])
    return values


def main() -> None:
    asha, asha_exp, asha_wall = search("asha")
    fifo, fifo_exp, fifo_wall = search("fifo")
    asha_epochs, fifo_epochs = sum(int(r["epochs"]) for r in asha), sum(int(r["epochs"]) for r in fifo)
    best_asha = min(float(r["best_eer"]) for r in asha if r["best_eer"])
    best_fifo = min(float(r["best_eer"]) for r in fifo if r["best_eer"])
    overhead = overheads(asha_exp) + overheads(fifo_exp)
    record("asha", {
        "asha_compute_fraction": round(asha_epochs / fifo_epochs, 3), "goal_fraction": "<= 0.40",
        "asha_best_metric_gap": round((best_asha - best_fifo) / best_fifo, 3), "goal_gap": "<= 0.05",
        "trial_epochs": {"asha": asha_epochs, "fifo": fifo_epochs}, "best_eer": {"asha": best_asha, "fifo": best_fifo},
        "wall_s": {"asha": round(asha_wall, 1), "fifo": round(fifo_wall, 1)}, "trials": len(asha),
        "trial_overhead_s": round(statistics.median(overhead), 1),
        "trial_overhead_s_range": [round(min(overhead), 1), round(max(overhead), 1)],
    }, command="python -m bench.asha")


if __name__ == "__main__":
    main()
