"""Steady-state epoch time: one Ray Train worker vs plain Lightning, and 2 DDP workers vs 1.

The same segmentation fine-tuning (local preset, demo-size corpus, 5 epochs of 20 batches per
worker, validation included) runs three ways. Each worker, and the plain Lightning process, gets
one CPU thread, so the comparison is of the training path and not of thread counts. The steady
state is the median of epochs 1..4 (epoch 0 pays for warm-up).

- ``ray_train_epoch_time_ratio`` = epoch time with 1 Ray Train worker / epoch time of plain ``fit``.
- ``two_worker_speedup`` = chunks per second with 2 workers / with 1 (pyannote's epoch is per worker:
  2 workers train on twice the chunks per epoch, so speedup = 2 x t(1 worker) / t(2 workers)).

    python -m bench.train_epoch
"""

from __future__ import annotations

import shutil
import statistics

from bench.common import WORK, corpus, metrics, record, run

EPOCHS = 5
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def epoch_seconds(workers: int) -> tuple[float, float]:
    """(steady-state seconds per epoch, wall seconds of the whole run)."""
    out = WORK / f"epoch-{workers}w"
    shutil.rmtree(out, ignore_errors=True)
    wall = run(["train", "seg", "--data", str(corpus() / "diar"), "--out", str(out), "--workers", str(workers),
                "--set", f"trainer.epochs={EPOCHS}", "--set", "trainer.limit_train_batches=20"], env=THREADS)
    rows = metrics(out)
    return statistics.median(row["epoch_seconds"] for row in rows[1:]), wall


def main() -> None:
    lightning_s, lightning_wall = epoch_seconds(0)
    one_s, one_wall = epoch_seconds(1)
    two_s, two_wall = epoch_seconds(2)
    record("train_epoch", {
        "ray_train_epoch_time_ratio": round(one_s / lightning_s, 3), "goal_ratio": "<= 1.05",
        "two_worker_speedup": round(2 * one_s / two_s, 2), "goal_speedup": ">= 1.5",
        "epoch_s_lightning": round(lightning_s, 2), "epoch_s_ray_1_worker": round(one_s, 2),
        "epoch_s_ray_2_workers": round(two_s, 2),
        "run_wall_s": {"lightning": round(lightning_wall, 1), "ray_1": round(one_wall, 1),
                       "ray_2": round(two_wall, 1)},
    }, command="python -m bench.train_epoch")


if __name__ == "__main__":
    main()
