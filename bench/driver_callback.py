"""The search driver's time per trial event in our Tune callbacks: W&B logging inline vs on its own thread.

Tune calls its callbacks inside its event loop and warns when ``process_trial_result`` (which runs every callback's
``on_trial_result``) takes over 0.5 s: "a performance bottleneck" (issue 20 saw 1.1-2.3 s with W&B on). Opening a W&B
run (``wandb.init``) takes seconds and every ``log`` waits on W&B's service, so ``TrialRuns`` now queues that work
for one thread (``in_background=True``); the inline variant is how it ran before.

Each variant drives the callbacks as Tune does for a search of TRIALS trials x EPOCHS epochs, two at a time (start,
a result per epoch, complete), W&B offline into a scratch folder, with the live view (``SearchView``, plain-line
mode) beside it. Figures: the longest and the mean time of one ``on_trial_start`` / ``on_trial_result`` /
``on_trial_complete`` call over all our callbacks, per variant, and ``inline_over_background`` for the longest
result-time (the goal: background longest < 0.5 s, Tune's warning threshold). Variants alternate A B B A.

    python -m bench.driver_callback
"""

from __future__ import annotations

import contextlib
import io
import shutil
import statistics
import time
from types import SimpleNamespace

from bench.common import WORK, record

TRIALS, EPOCHS = 6, 4
ORDER = ("inline", "background", "background", "inline")
THRESHOLD_S = 0.5  # Tune's warning (ray/tune/execution/tune_controller.py, TUNE_WARN_SLOW_... defaults)


def drive(variant: str, index: int) -> dict[str, list[float]]:
    from dist_spk.tune.live_view import SearchView
    from dist_spk.tune.wandb_logging import TrialRuns

    folder = WORK / f"driver-callback-{index}-{variant}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    runs = TrialRuns(project="bench", exp_dir=folder, objective="eer", base={"optim": {"lr": 1e-3}}, offline=True,
                     in_background=variant == "background")
    view = SearchView(objective="eer", max_epochs=EPOCHS, total_trials=TRIALS, params=["optim.lr"], live=False)
    callbacks = (runs, view)
    times: dict[str, list[float]] = {"start": [], "result": [], "complete": []}

    def timed(kind: str, method: str, *args) -> None:
        started = time.perf_counter()
        for callback in callbacks:
            getattr(callback, method)(*args)
        times[kind].append(time.perf_counter() - started)

    with contextlib.redirect_stdout(io.StringIO()):  # the view's lines
        for pair in range(0, TRIALS, 2):
            trials = [SimpleNamespace(trial_id=f"bench_{pair + k:05d}", config={"optim.lr": 1e-3 * (pair + k + 1)})
                      for k in range(2)]
            for trial in trials:
                timed("start", "on_trial_start", 0, trials, trial)
            for epoch in range(EPOCHS):
                for trial in trials:
                    result = {"epoch": epoch, "training_iteration": epoch + 1, "eer": 0.5 / (epoch + 1),
                              "loss": 1.0 / (epoch + 1)}
                    timed("result", "on_trial_result", 0, trials, trial, result)
            for trial in trials:
                timed("complete", "on_trial_complete", 0, trials, trial)
        started = time.perf_counter()
        runs.close()  # after the search: every run finished on disk
        times["close"] = [time.perf_counter() - started]
    runs_written = len(list((folder / "wandb").glob("offline-run-*/run-*.wandb")))
    assert runs_written == TRIALS, f"{variant}: {runs_written} W&B runs written, expected {TRIALS}"
    return times


def main() -> None:
    measured: dict[str, dict[str, list[float]]] = {}
    for index, variant in enumerate(ORDER):
        times = drive(variant, index)
        for kind, values in times.items():
            measured.setdefault(variant, {}).setdefault(kind, []).extend(values)
        print(f"{variant}: longest result {max(times['result']):.3f} s, start {max(times['start']):.3f} s",
              flush=True)
    figures: dict[str, float] = {}
    for variant, kinds in measured.items():
        for kind, values in kinds.items():
            figures[f"{variant}_{kind}_max_s"] = round(max(values), 4)
            figures[f"{variant}_{kind}_mean_s"] = round(statistics.mean(values), 4)
    worst = {variant: max(max(kinds["start"]), max(kinds["result"]), max(kinds["complete"]))
             for variant, kinds in measured.items()}
    figures["inline_over_background_longest_event"] = round(worst["inline"] / worst["background"], 1)
    figures["background_longest_event_under_threshold"] = worst["background"] < THRESHOLD_S
    figures["threshold_s"] = THRESHOLD_S
    for name, value in figures.items():
        print(f"{name}: {value}")
    record("driver_callback", figures, command="python -m bench.driver_callback")


if __name__ == "__main__":
    main()
