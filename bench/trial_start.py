"""A trial's start-up in the local test mode: in its Tune trial's own process, or in a Ray Train worker group
(with and without Ray Train's preemption watcher).

Issue 22: a trial paid ~15 s before its first step on 2 cores (Ray Train's controller, placement group and worker,
then torch, Lightning and pyannote imported again). Since then a 1-worker local trial trains in its Tune trial's own
process, which Tune reuses for the next trial (``search.in_process_trials``, tune/driver.py): only the first trial
per process pays the imports. ``trial_overhead_s`` = the median start-up of those trials; their first (cold) ones
are reported too.

Ray 2.60's Train controller starts a ``PreemptionWatcher`` actor for every run: it polls Ray for nodes being
drained (spot reclaims). A single machine is never drained, so the local test mode turns it off
(``RAY_TRAIN_ENABLE_PREEMPTION_WATCHER=0``, unless set); ``trial_start_ratio`` = the worker group's median
start-up with the watcher off / on.

Each run is a 6-trial, 1-epoch FIFO search (a grid of 6 learning rates, 2 trials at a time on 2 cores); variants
alternate A B C C B A. Start-up: launch to the first training step (``trials/<id>/startup.json``); the search's
wall time is reported too (it includes starting Ray and the Tune trial processes).

    python -m bench.trial_start
"""

from __future__ import annotations

import json
import shutil
import statistics
import time

from bench.common import WORK, corpus, record, run
from dist_spk.runs.startup import STAGES

# variant -> (search.in_process_trials, RAY_TRAIN_ENABLE_PREEMPTION_WATCHER)
VARIANTS = {"in_process": ("true", "0"), "watcher_off": ("false", "0"), "watcher_on": ("false", "1")}
ORDER = ("in_process", "watcher_off", "watcher_on", "watcher_on", "watcher_off", "in_process")
SPACE = "parameters:\n  optim.lr: {grid: [1.0e-3, 1.5e-3, 2.0e-3, 2.5e-3, 3.0e-3, 3.5e-3]}\n"


def startups(variant: str, index: int) -> tuple[list[dict], float]:
    exp = WORK / f"trial-start-{index}-{variant}"
    shutil.rmtree(exp, ignore_errors=True)
    space = WORK / "trial-start-space.yaml"
    space.write_text(SPACE)
    in_process, watcher = VARIANTS[variant]
    started = time.perf_counter()
    run(["tune", "spk", "--data", str(corpus() / "spk"), "--out", str(exp), "--space", str(space),
         "--num-samples", "1", "--scheduler", "fifo", "--set", "trainer.epochs=1",
         "--set", f"search.in_process_trials={in_process}"],
        env={"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": watcher, "WANDB_MODE": "offline"})
    wall = time.perf_counter() - started
    return [json.loads(path.read_text()) for path in (exp / "trials").glob("*/startup.json")], wall


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    seen: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    walls: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
    for index, variant in enumerate(ORDER):
        found, wall = startups(variant, index)
        seen[variant] += found
        walls[variant].append(round(wall, 1))
        print(f"{variant}: start-ups {sorted(round(s['total'], 1) for s in found)}, search {wall:.0f} s", flush=True)
    median = {variant: round(statistics.median(s["total"] for s in starts), 2) for variant, starts in seen.items()}
    record("trial_start", {
        "trial_overhead_s": median["in_process"],
        "goal_trial_overhead_s": "<= 3",
        "trial_overhead_s_worker_group": median["watcher_off"],
        "in_process_over_worker_group": round(median["in_process"] / median["watcher_off"], 3),
        "trial_start_ratio": round(median["watcher_off"] / median["watcher_on"], 3),
        "startup_s_median": median,
        "startup_s_all": {variant: sorted(round(s["total"], 2) for s in starts) for variant, starts in seen.items()},
        "stages_median_s": {variant: {stage: round(statistics.median(s.get(stage, 0.0) for s in starts), 2)
                                      for stage in STAGES} for variant, starts in seen.items()},
        "search_wall_s": walls,
        "trials_per_run": 6, "order": list(ORDER),
    }, command="python -m bench.trial_start")


if __name__ == "__main__":
    main()
