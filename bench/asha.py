"""ASHA vs FIFO on the same 12-trial search, and each trial's fixed start-up cost.

The same seeded random search (12 speaker-encoder trials sampled from the shipped space's knobs that
keep the model size: learning rate log-uniform over 1e-4..3e-2, AAM margin 0.1..0.4, scale 16..48;
16 epochs each, local preset) runs under ASHA and under FIFO on the medium demo corpus (80 training
speakers; 3168 trials on 24 held-out ones). Random search is seeded (``trainer.seed``), so both
searches train the same 12 configurations. ASHA uses the local spk preset's rungs: grace period 3 epochs
(the AAM margin ramps up over the first 2), reduction factor 2: rungs at 3, 6 and 12 epochs.

History (results.json keeps only the last run):

- small corpus (560 trials on 80 utterances), grid of 4 lrs x 2 margins: ASHA's best EER was 22%
  (8 epochs, grace 1) and 58% / 48% (16 epochs, grace 2) worse than FIFO's. Replaying successive
  halving on FIFO's curves showed why: the trials' EER ranks during the margin ramp were unrelated to
  their final ranks (Spearman -0.3 to 0.05 over epochs 1-3), and all 8 ended at 0.10-0.20 EER with a
  per-epoch jitter of ~0.02: ranking them early was a coin toss. Hence the grace-period rule
  (``dist_spk.tune.runner.search_warnings``) and the medium corpus.
- medium corpus, same grid, grace 3: equal best EER (gap 0.0), but ASHA trained 0.79 of FIFO's
  epochs: the grid runs in ascending-lr order, each new trial beat those before it at every rung,
  and asynchronous ASHA promotes a trial that beats what reached the rung before it. A random
  search has no such order.
- medium corpus, this random search, grace 3, reduction 3 (rungs 3 and 9): fraction 0.422 (81 of 192
  trial-epochs), best-EER gap 0.0. Successive halving replayed on that run's FIFO curves gave 0.396
  (gap 0.0) at grace 3, reduction 2 - the rungs the local spk preset uses - hence this setting.
- medium corpus, this random search, grace 3, reduction 2 (2026-12-03, in-process trials): fraction 0.302 (58 of
  192), best-EER gap 0.154: this run's FIFO curves differ from the last run's (best 0.0082 vs 0.0076, by another
  trial: the speaker loader now draws a batch's crop positions from one generator, so the crops changed; within the
  run both searches gave identical curves for the same trial), and its best trial (margin 0.4) was a slow starter,
  last but one at epoch 3, which ASHA stopped there. Ranks after 1-3 epochs were anti-correlated with the final
  ones (Spearman -0.70, -0.47, -0.23); the replay keeps that trial only from grace 6 (fraction 0.625).

- ``asha_compute_fraction`` = trial-epochs ASHA trained / trial-epochs FIFO trained.
- ``asha_best_metric_gap`` = (best EER under ASHA - best EER under FIFO) / best EER under FIFO, each
  the lowest EER of any epoch of any trial: a minimum over noisy evaluations, so the more epochs a
  search evaluates the luckier its minimum (FIFO evaluates ~3x as many).
- ``asha_settled_metric_gap``: the same with each trial's EER averaged over its last 3 epochs, over
  the trials that ran all epochs: the minimum with less of that luck.
- ``trial_overhead_s``: per trial, the seconds from the trial driver launching its worker group to
  the first training step (``trials/<id>/startup.json``, see ``dist_spk/runs/startup.py``), median
  over the trials of both searches, and the median of each stage (worker group, imports, data + model, trainer).

    python -m bench.asha
"""

from __future__ import annotations

import csv
import json
import shutil
import statistics
from pathlib import Path

from bench.common import WORK, corpus, metrics, record, run
from dist_spk.runs.startup import STAGES

SPACE = """parameters:
  optim.lr: {distribution: log_uniform_values, min: 1.0e-4, max: 3.0e-2}
  head.margin: {distribution: q_uniform, min: 0.1, max: 0.4, q: 0.05}
  head.scale: {values: [16.0, 24.0, 32.0, 48.0]}
"""
TRIALS = 12
EPOCHS = 16
GRACE, REDUCTION = 3, 2  # the local spk preset's rungs (config/presets.py)
CORPUS = "medium"


def search(scheduler: str) -> tuple[list[dict], Path, float]:
    exp = WORK / f"search-{scheduler}"
    shutil.rmtree(exp, ignore_errors=True)
    WORK.mkdir(parents=True, exist_ok=True)
    space = WORK / "asha-space.yaml"
    space.write_text(SPACE)
    wall = run(["tune", "spk", "--data", str(corpus(CORPUS) / "spk"), "--out", str(exp), "--space", str(space),
                "--num-samples", str(TRIALS), "--scheduler", scheduler, "--set", f"trainer.epochs={EPOCHS}",
                "--set", f"search.grace_period={GRACE}", "--set", f"search.reduction_factor={REDUCTION}"])
    with (exp / "summary.csv").open() as handle:
        return list(csv.DictReader(handle)), exp, wall


def overheads(exp: Path) -> list[dict]:
    """Each trial's start-up breakdown (``trials/<id>/startup.json``: seconds per stage, and total)."""
    return [json.loads(path.read_text()) for path in (exp / "trials").glob("*/startup.json")]


def histories(exp: Path, metric: str = "eer") -> dict[str, list[float]]:
    """Each trial's metric per epoch (``trials/<id>/metrics.jsonl``)."""
    out = {}
    for path in sorted((exp / "trials").glob("*/metrics.jsonl")):
        rows = sorted(metrics(path.parent), key=lambda row: row["epoch"])
        out[path.parent.name] = [row[metric] for row in rows]
    return out


def replay(curves: dict[str, list[float]], grace: int, reduction: int) -> tuple[int, float]:
    """Synchronous successive halving replayed on FIFO's curves: (trial-epochs trained, best metric seen).

    At each rung (grace, grace * reduction, ...) the best 1/reduction of the trials still running go on
    (at least one), ranked by the metric at that epoch; lower is better. ASHA's asynchronous rule can
    promote a little more (a trial is compared with those that reached the rung before it), so this is
    the frugal end of what ASHA would do on the same curves.
    """
    epochs = min(len(curve) for curve in curves.values())
    alive, stopped_at = list(curves), {}
    rung = grace
    while rung < epochs and len(alive) > 1:
        alive.sort(key=lambda trial: curves[trial][rung - 1])
        keep = max(1, len(alive) // reduction)
        for trial in alive[keep:]:
            stopped_at[trial] = rung
        alive = alive[:keep]
        rung *= reduction
    for trial in alive:
        stopped_at[trial] = epochs
    best = min(min(curves[trial][:stop]) for trial, stop in stopped_at.items())
    return sum(stopped_at.values()), best


def epoch_noise(curves: dict[str, list[float]]) -> float:
    """Median change of a trial's metric from one epoch to the next over the last quarter of training."""
    epochs = min(len(curve) for curve in curves.values())
    tail = range(max(1, epochs - epochs // 4), epochs)
    return round(statistics.median(abs(curve[e] - curve[e - 1]) for curve in curves.values() for e in tail), 4)


def settled(curves: dict[str, list[float]], epochs: int, last: int = 3) -> float:
    """The lowest mean metric over the last ``last`` epochs, among trials that ran ``epochs`` epochs."""
    return min(statistics.fmean(curve[epochs - last:epochs]) for curve in curves.values() if len(curve) >= epochs)


def rank_agreement(curves: dict[str, list[float]]) -> list[float]:
    """Per epoch: Spearman correlation between the trials' metric at that epoch and their final best."""
    from scipy.stats import spearmanr

    epochs = min(len(curve) for curve in curves.values())
    final = [min(curve[:epochs]) for curve in curves.values()]
    return [round(float(spearmanr([curve[e] for curve in curves.values()], final).statistic), 2)
            for e in range(epochs)]


def replay_table(curves: dict[str, list[float]]) -> dict[str, dict]:
    """Compute fraction and best-metric gap of successive halving for a few (grace, reduction) pairs."""
    epochs = min(len(curve) for curve in curves.values())
    full = len(curves) * epochs
    fifo_best = min(min(curve[:epochs]) for curve in curves.values())
    table = {}
    for grace in (1, 2, 3, 4, 6):
        for reduction in (2, 3, 4):
            spent, best = replay(curves, grace, reduction)
            table[f"grace {grace}, reduction {reduction}"] = {
                "compute_fraction": round(spent / full, 3), "best_metric_gap": round((best - fifo_best) / fifo_best, 3)}
    return table


def main() -> None:
    asha, asha_exp, asha_wall = search("asha")
    fifo, fifo_exp, fifo_wall = search("fifo")
    asha_epochs, fifo_epochs = sum(int(r["epochs"]) for r in asha), sum(int(r["epochs"]) for r in fifo)
    best_asha = min(float(r["best_eer"]) for r in asha if r["best_eer"])
    best_fifo = min(float(r["best_eer"]) for r in fifo if r["best_eer"])
    overhead = overheads(asha_exp) + overheads(fifo_exp)
    curves = histories(fifo_exp)
    settled_asha, settled_fifo = settled(histories(asha_exp), EPOCHS), settled(curves, EPOCHS)
    record("asha", {
        "asha_compute_fraction": round(asha_epochs / fifo_epochs, 3), "goal_fraction": "<= 0.40",
        "asha_best_metric_gap": round((best_asha - best_fifo) / best_fifo, 3), "goal_gap": "<= 0.05",
        "asha_settled_metric_gap": round((settled_asha - settled_fifo) / settled_fifo, 3),
        "settled_eer": {"asha": round(settled_asha, 4), "fifo": round(settled_fifo, 4)},
        "corpus": CORPUS, "epochs": EPOCHS, "grace_period": GRACE, "reduction_factor": REDUCTION,
        "trial_epochs": {"asha": asha_epochs, "fifo": fifo_epochs}, "best_eer": {"asha": best_asha, "fifo": best_fifo},
        "wall_s": {"asha": round(asha_wall, 1), "fifo": round(fifo_wall, 1)}, "trials": len(asha),
        "trial_overhead_s": round(statistics.median(o["total"] for o in overhead), 1),
        "trial_overhead_s_range": [round(min(o["total"] for o in overhead), 1),
                                   round(max(o["total"] for o in overhead), 1)],
        "trial_overhead_stages_median_s": {stage: round(statistics.median(o[stage] for o in overhead), 1)
                                           for stage in STAGES},
        "fifo_rank_agreement_by_epoch": rank_agreement(curves),
        "fifo_eer_epoch_to_epoch_change": epoch_noise(curves),
        "successive_halving_replayed_on_fifo": replay_table(curves),
    }, command="python -m bench.asha")


if __name__ == "__main__":
    main()
