"""A trial's start-up in the local test mode, with and without Ray Train's preemption watcher.

Ray 2.60's Train controller starts a ``PreemptionWatcher`` actor for every run: it polls Ray for
nodes being drained (spot reclaims) so the group can stop cleanly. A single machine is never
drained, so the local test mode turns it off (``RAY_TRAIN_ENABLE_PREEMPTION_WATCHER=0``, unless set;
``dist_spk.launch.ray_train.local_ray_env``); on a cluster it stays on. One process fewer per trial
matters on a small machine, where every trial's Ray processes start on the same cores.

Each run is a 2-trial, 1-epoch FIFO search (both trials at once on 2 cores); the variants alternate
A B B A. ``trial_start_ratio`` = median start-up with the watcher off / on (``trials/<id>/startup.json``).

    python -m bench.trial_start
"""

from __future__ import annotations

import json
import shutil
import statistics

from bench.common import WORK, corpus, record, run
from dist_spk.runs.startup import STAGES

VARIANTS = {"watcher_off": "0", "watcher_on": "1"}
ORDER = ("watcher_off", "watcher_on", "watcher_on", "watcher_off")
SPACE = "parameters:\n  optim.lr: {grid: [1.0e-3, 3.0e-3]}\n"


def startups(variant: str, index: int) -> list[dict]:
    exp = WORK / f"trial-start-{index}-{variant}"
    shutil.rmtree(exp, ignore_errors=True)
    space = WORK / "trial-start-space.yaml"
    space.write_text(SPACE)
    run(["tune", "spk", "--data", str(corpus() / "spk"), "--out", str(exp), "--space", str(space),
         "--num-samples", "1", "--scheduler", "fifo", "--set", "trainer.epochs=1"],
        env={"RAY_TRAIN_ENABLE_PREEMPTION_WATCHER": VARIANTS[variant]})
    return [json.loads(path.read_text()) for path in (exp / "trials").glob("*/startup.json")]


def main() -> None:
    WORK.mkdir(parents=True, exist_ok=True)
    seen: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    for index, variant in enumerate(ORDER):
        seen[variant] += startups(variant, index)
    median = {variant: round(statistics.median(s["total"] for s in starts), 1) for variant, starts in seen.items()}
    record("trial_start", {
        "trial_start_ratio": round(median["watcher_off"] / median["watcher_on"], 3),
        "startup_s_median": median,
        "startup_s_all": {variant: sorted(round(s["total"], 1) for s in starts) for variant, starts in seen.items()},
        "stages_median_s": {variant: {stage: round(statistics.median(s[stage] for s in starts), 1) for stage in STAGES}
                            for variant, starts in seen.items()},
        "trials_per_run": 2, "order": list(ORDER),
    }, command="python -m bench.trial_start")


if __name__ == "__main__":
    main()
