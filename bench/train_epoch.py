"""Steady-state epoch time: one Ray Train worker vs plain Lightning, and 2 DDP workers vs 1.

The same segmentation fine-tuning (local preset, demo-size corpus, 6 epochs, validation included)
runs three ways: plain Lightning in this process (``--workers 0``), 1 Ray Train worker, 2 Ray Train
workers. Each worker, and the plain Lightning process, gets one CPU thread, so the comparison is of
the training path and not of thread counts.

An epoch's time is the difference of consecutive ``wall_time`` stamps in metrics.jsonl: training,
validation, and the checkpoint + Ray report of the epoch before (``epoch_seconds`` leaves the last
two out, and they are what Ray adds). The steady state is the median over epochs 2..5 (epoch 0 pays
for warm-up, the first difference for the first checkpoint).

The machine is shared and noisy, and single runs drifted by 20% between consecutive runs: the three
ways run in the order A B C C B A and each figure pools both runs of a way.

- ``ray_train_epoch_time_ratio`` = epoch time with 1 Ray Train worker / epoch time of plain ``fit``.
- ``two_worker_speedup`` = chunks per second with 2 workers / with 1 (pyannote's training epoch is
  per worker: 2 workers train on twice the chunks per epoch, so speedup = 2 x t(1 worker) / t(2 workers)).

    python -m bench.train_epoch
"""

from __future__ import annotations

import shutil
import statistics

from bench.common import WORK, corpus, metrics, record, run

EPOCHS = 6
THREADS = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
WAYS = {"lightning": 0, "ray_1": 1, "ray_2": 2}  # name -> --workers


def epoch_times(workers: int, repeat: int) -> tuple[list[float], float]:
    """(steady-state seconds of each epoch, wall seconds of the whole run)."""
    out = WORK / f"epoch-{workers}w-{repeat}"
    shutil.rmtree(out, ignore_errors=True)
    wall = run(["train", "seg", "--data", str(corpus() / "diar"), "--out", str(out), "--workers", str(workers),
                "--set", f"trainer.epochs={EPOCHS}"], env=THREADS)
    stamps = [row["wall_time"] for row in metrics(out)]
    return [later - earlier for earlier, later in zip(stamps[1:-1], stamps[2:], strict=True)], wall


def main() -> None:
    epochs: dict[str, list[float]] = {name: [] for name in WAYS}
    walls: dict[str, list[float]] = {name: [] for name in WAYS}
    for repeat, name in enumerate([*WAYS, *reversed(WAYS)]):
        times, wall = epoch_times(WAYS[name], repeat)
        epochs[name] += times
        walls[name].append(round(wall, 1))
        print(f"{name}: epochs {[round(t, 2) for t in times]} s, run {wall:.0f} s", flush=True)
    steady = {name: statistics.median(times) for name, times in epochs.items()}
    record("train_epoch", {
        "ray_train_epoch_time_ratio": round(steady["ray_1"] / steady["lightning"], 3), "goal_ratio": "<= 1.05",
        "two_worker_speedup": round(2 * steady["ray_1"] / steady["ray_2"], 2), "goal_speedup": ">= 1.5",
        "epoch_s": {name: round(value, 2) for name, value in steady.items()},
        "epoch_s_spread": {name: [round(min(t), 2), round(max(t), 2)] for name, t in epochs.items()},
        "run_wall_s": walls,
    }, command="python -m bench.train_epoch")


if __name__ == "__main__":
    main()
