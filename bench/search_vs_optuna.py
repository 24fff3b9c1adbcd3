"""dist-spk's search on one machine vs what users do today: Optuna TPE with a Hyperband pruner in one process.

Same speaker-encoder space (the shipped ``spk.yaml``: emb_size, margin, scale, lr, depth), same budget (TRIALS
trials x EPOCHS epochs at most), same seed, same corpus, same training loop (``dist_spk.train.spk_loop``) and
local preset, each using the machine's two cores its own way:

(a) ``dist-spk tune spk --search optuna`` with ASHA (grace GRACE, reduction 2): Ray Tune, two 1-thread trials at
    once (in their Tune trials' own reused processes, tune/driver.py);
(b) ``optuna.create_study`` with TPE and ``HyperbandPruner`` (same rungs) in one process, one trial at a time with
    two torch threads, each epoch reported to the pruner (``trial.report`` / ``should_prune``).

Both are timed from the launch of their process (imports, Ray's start, data preparation included). Figures: each
one's best EER and trial-epochs spent; the shared target (the worse of the two bests, which both reached); the
wall time each took to first reach it; ``search_time_ratio_vs_optuna`` = (a)'s time to the target / (b)'s (goal
<= 1.0 on 2 cores).

    python -m bench.search_vs_optuna
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import CLI, WORK, corpus, record

TRIALS, EPOCHS, GRACE, SEED = 8, 8, 3, 0
COMMAND = "python -m bench.search_vs_optuna"


def run_dist_spk(data: Path, exp: Path) -> list[tuple[float, float]]:
    """(seconds since launch, EER) of every epoch every trial finished."""
    shutil.rmtree(exp, ignore_errors=True)
    started = time.time()
    subprocess.run([*CLI, "tune", "spk", "--data", str(data), "--out", str(exp), "--num-samples", str(TRIALS),
                    "--search", "optuna", "--scheduler", "asha", "--set", f"trainer.epochs={EPOCHS}",
                    "--set", f"search.grace_period={GRACE}", "--set", "search.reduction_factor=2",
                    "--set", f"trainer.seed={SEED}"], check=True, stdout=subprocess.DEVNULL,
                   env={**os.environ, "WANDB_MODE": "offline"})
    return sorted((row["wall_time"] - started, row["eer"]) for trial in (exp / "trials").iterdir()
                  for row in map(json.loads, (trial / "metrics.jsonl").read_text().splitlines()))


def run_optuna(data: Path, out: Path) -> list[tuple[float, float]]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started = time.time()
    subprocess.run([sys.executable, "-m", "bench.search_vs_optuna", "--optuna", str(data), str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return sorted((finished - started, eer) for finished, eer in json.loads((out / "epochs.json").read_text()))


def optuna_search(data: Path, out: Path) -> None:
    """(b), in this process: what the seed team ran, on our loop. Each epoch's end (``time.time()``) and EER."""
    import optuna
    import torch

    from dist_spk.config import load_config, to_dict
    from dist_spk.launch.run import PREPARES
    from dist_spk.runs.run_dir import checkpoints_dir
    from dist_spk.train.session import LocalSession
    from dist_spk.train.spk_loop import train_speaker
    from dist_spk.tune.space import default_space_path, load_space

    torch.set_num_threads(2)  # one trial at a time: both cores
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    params = load_space(default_space_path("spk"), "spk")
    base = load_config("spk", overrides=[f"data.root={data}", f"trainer.epochs={EPOCHS}", "trainer.workers=0",
                                         f"trainer.seed={SEED}"])
    extras = PREPARES["spk"](base, out)
    epochs: list[tuple[float, float]] = []

    class PrunedSession(LocalSession):
        def __init__(self, run_dir: Path, trial) -> None:
            super().__init__(run_dir=run_dir)
            self.trial = trial

        def report(self, metrics, checkpoint, *, best=False) -> None:
            super().report(metrics, checkpoint, best=best)
            epochs.append((time.time(), metrics["eer"]))
            self.trial.report(metrics["eer"], int(metrics["epoch"]) + 1)
            if self.trial.should_prune():
                raise optuna.TrialPruned()

    def suggest(trial, param):
        a = param.args
        if param.kind == "constant":
            return a[0]
        if param.kind in ("choice", "grid"):
            return trial.suggest_categorical(param.key, list(a[0]))
        if param.kind in ("uniform", "quniform", "loguniform"):
            return trial.suggest_float(param.key, a[0], a[1], step=a[2] if param.kind == "quniform" else None,
                                       log=param.kind == "loguniform")
        if param.kind == "randint":
            return trial.suggest_int(param.key, a[0], a[1])
        raise ValueError(f"{param.key}: {param.kind} not in this benchmark's space")

    def objective(trial) -> float:
        data_config = to_dict(base)
        for param in params:
            section, name = param.key.rsplit(".", 1)
            node = data_config
            for part in section.split("."):
                node = node[part]
            node[name] = suggest(trial, param)
        run_dir = out / "trials" / f"{trial.number:03d}"
        checkpoints_dir(run_dir).mkdir(parents=True)
        payload = {"task": "spk", "config": data_config, "run_dir": str(run_dir), **extras}
        train_speaker(payload, PrunedSession(run_dir, trial))
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        return min(row["eer"] for row in rows)

    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=SEED),
                                pruner=optuna.pruners.HyperbandPruner(min_resource=GRACE, max_resource=EPOCHS,
                                                                      reduction_factor=2))
    study.optimize(objective, n_trials=TRIALS)
    (out / "epochs.json").write_text(json.dumps(epochs))


def first_reach(epochs: list[tuple[float, float]], target: float) -> float:
    return next(seconds for seconds, eer in epochs if eer <= target + 1e-9)


def main() -> None:
    data = corpus("small") / "spk"
    measured = {}
    for variant in ("dist_spk", "optuna"):  # one run each: ~10 min together on 2 cores
        started = time.perf_counter()
        measured[variant] = (run_dist_spk(data, WORK / "search-vs-optuna-dist-spk") if variant == "dist_spk"
                             else run_optuna(data, WORK / "search-vs-optuna-optuna"))
        print(f"{variant}: {len(measured[variant])} trial-epochs in {time.perf_counter() - started:.0f} s, best EER "
              f"{min(e for _, e in measured[variant]):.4f}", flush=True)
    best = {variant: min(eer for _, eer in epochs) for variant, epochs in measured.items()}
    target = max(best.values())
    reach = {variant: round(first_reach(epochs, target), 1) for variant, epochs in measured.items()}
    figures = {
        "search_time_ratio_vs_optuna": round(reach["dist_spk"] / reach["optuna"], 3),
        "goal": "<= 1.0",
        "target_eer": round(target, 4),
        "seconds_to_target": reach,
        "best_eer": {k: round(v, 4) for k, v in best.items()},
        "trial_epochs": {variant: len(epochs) for variant, epochs in measured.items()},
        "wall_s": {variant: round(max(s for s, _ in epochs), 1) for variant, epochs in measured.items()},
        "budget": {"trials": TRIALS, "max_epochs": EPOCHS, "grace_period": GRACE, "reduction_factor": 2,
                   "seed": SEED, "corpus": "small", "space": "src/dist_spk/tune/spaces/spk.yaml"},
    }
    print(json.dumps(figures, indent=1))
    record("search_vs_optuna", figures, command=COMMAND)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--optuna"]:
        optuna_search(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
