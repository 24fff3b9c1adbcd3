"""ASHA vs FIFO on the same 8-trial search, and each trial's fixed start-up cost.

The same grid (4 learning rates x 2 margins = 8 speaker-encoder trials, 16 epochs each, local preset)
runs under ASHA (grace 2 epochs, reduction factor 3: rungs at 2 and 6 epochs) and under FIFO. With
grace 1 and 8 epochs (the first version) ASHA spent 0.33 of FIFO's epochs but its best EER was 22%
worse: the margin-0.3 trial FIFO found best was last of 8 after epoch 1. With 16 epochs and grace 2
(this version) the gap was 0.577: the margin-0.3 trials still trail at the first rung.

- ``asha_compute_fraction`` = trial-epochs ASHA trained / trial-epochs FIFO trained.
- ``asha_best_metric_gap`` = (best EER under ASHA - best EER under FIFO) / best EER under FIFO.
- ``trial_overhead_s``: per trial, the seconds from the trial driver launching its worker group to
  the first training step (``trials/<id>/startup.json``, see ``dist_spk/train/startup.py``), median
  over the 16 trials, and the median of each stage (worker group, imports, data + model, trainer).

    python -m bench.asha
"""

from __future__ import annotations

import csv
import json
import shutil
import statistics
from pathlib import Path

from bench.common import WORK, corpus, record, run
from dist_spk.train.startup import STAGES

SPACE = """parameters:
  optim.lr: {grid: [1.0e-3, 3.0e-3, 1.0e-2, 3.0e-2]}
  head.margin: {grid: [0.1, 0.3]}
"""
EPOCHS = 16
GRACE, REDUCTION = 2, 3


def search(scheduler: str) -> tuple[list[dict], Path, float]:
    exp = WORK / f"search-{scheduler}"
    shutil.rmtree(exp, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    space = WORK / "asha-space.yaml"
    space.write_text(SPACE)
    wall = run(["tune", "spk", "--data", str(corpus() / "spk"), "--out", str(exp), "--space", str(space),
                "--num-samples", "1", "--scheduler", scheduler, "--set", f"trainer.epochs={EPOCHS}",
                "--set", f"search.grace_period={GRACE}", "--set", f"search.reduction_factor={REDUCTION}"])
    with (exp / "summary.csv").open() as handle:
        return list(csv.DictReader(handle)), exp, wall


def overheads(exp: Path) -> list[dict]:
    """Each trial's start-up breakdown (``trials/<id>/startup.json``: seconds per stage, and total)."""
    return [json.loads(path.read_text()) for path in (exp / "trials").glob("*/startup.json")]


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
        "epochs": EPOCHS, "grace_period": GRACE, "reduction_factor": REDUCTION,
        "trial_epochs": {"asha": asha_epochs, "fifo": fifo_epochs}, "best_eer": {"asha": best_asha, "fifo": best_fifo},
        "wall_s": {"asha": round(asha_wall, 1), "fifo": round(fifo_wall, 1)}, "trials": len(asha),
        "trial_overhead_s": round(statistics.median(o["total"] for o in overhead), 1),
        "trial_overhead_s_range": [round(min(o["total"] for o in overhead), 1),
                                   round(max(o["total"] for o in overhead), 1)],
        "trial_overhead_stages_median_s": {stage: round(statistics.median(o[stage] for o in overhead), 1)
                                           for stage in STAGES},
    }, command="python -m bench.asha")


if __name__ == "__main__":
    main()
