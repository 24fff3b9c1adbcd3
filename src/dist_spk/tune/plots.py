"""``dist-spk report EXP``: the plots the seed teams drew by hand, from a finished (or running) search.

- ``optimization_history.png``: each trial's best objective in trial order, and the best so far;
- ``learning_curves.png``: the objective per epoch of every trial (ASHA's early stops show as short lines);
- ``parallel_coordinates.png``: every searched parameter on its own axis, one line per trial, coloured by
  its best objective;
- ``param_importance.png``: Optuna's fANOVA importance of each parameter for the objective.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from dist_spk.errors import DistSpkError  # noqa: E402
from dist_spk.train.run_dir import read_metrics  # noqa: E402

FIXED_COLUMNS = ("trial_id", "status", "epochs", "best_epoch")


def read_summary(exp_dir: Path) -> tuple[list[dict], str, list[str]]:
    """(rows, objective, parameter names) of ``EXP/summary.csv``."""
    path = Path(exp_dir) / "summary.csv"
    if not path.is_file():
        raise DistSpkError(f"{exp_dir}: no summary.csv; is it a finished 'dist-spk tune' experiment?")
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    columns = list(rows[0]) if rows else []
    objective = next((c[len("best_"):] for c in columns if c.startswith("best_") and c != "best_epoch"), None)
    if objective is None:
        raise DistSpkError(f"{path}: no best_<metric> column")
    params = [c for c in columns if c not in FIXED_COLUMNS and c != f"best_{objective}"]
    return rows, objective, params


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def optimization_history(rows: list[dict], objective: str, out: Path) -> Path:
    ordered = sorted(rows, key=lambda r: r["trial_id"])
    values = [_number(r[f"best_{objective}"]) for r in ordered]
    best, running = math.inf, []
    for value in values:
        best = min(best, value) if value is not None else best
        running.append(best if math.isfinite(best) else None)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.scatter(range(len(values)), [v if v is not None else math.nan for v in values], label="trial")
    ax.step(range(len(running)), [v if v is not None else math.nan for v in running], where="post", color="C3",
            label="best so far")
    ax.set(xlabel="trial (in start order)", ylabel=objective, title="Optimisation history")
    ax.legend()
    return _save(fig, out / "optimization_history.png")


def learning_curves(exp_dir: Path, rows: list[dict], objective: str, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    for row in rows:
        history = read_metrics(Path(exp_dir) / "trials" / row["trial_id"])
        points = [(h["epoch"], h[objective]) for h in history if h.get(objective) is not None]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=row["trial_id"])
    ax.set(xlabel="epoch", ylabel=objective, title="Learning curves (short lines: stopped early)")
    if len(rows) <= 12:
        ax.legend(fontsize=7)
    return _save(fig, out / "learning_curves.png")


def _axis_values(rows: list[dict], param: str) -> list[float]:
    """A parameter as positions in [0, 1]: numbers scaled (log when they span decades), categories spread."""
    raw = [r[param] for r in rows]
    numbers = [_number(v) for v in raw]
    if all(n is not None for n in numbers):
        low, high = min(numbers), max(numbers)
        if low > 0 and high / low > 20:
            numbers, low, high = [math.log10(n) for n in numbers], math.log10(low), math.log10(high)
        return [0.5 if high == low else (n - low) / (high - low) for n in numbers]
    categories = sorted(set(raw))
    return [0.5 if len(categories) == 1 else categories.index(v) / (len(categories) - 1) for v in raw]


def parallel_coordinates(rows: list[dict], objective: str, params: list[str], out: Path) -> Path:
    scored = [r for r in rows if _number(r[f"best_{objective}"]) is not None]
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * (len(params) + 1)), 4))
    if scored:
        columns = [_axis_values(scored, p) for p in params] + [_axis_values(scored, f"best_{objective}")]
        values = [_number(r[f"best_{objective}"]) for r in scored]
        low, high = min(values), max(values)
        colormap = plt.get_cmap("viridis_r")
        for index, value in enumerate(values):
            shade = 0.5 if high == low else (value - low) / (high - low)
            ax.plot(range(len(columns)), [column[index] for column in columns], color=colormap(shade), alpha=0.8)
    ax.set_xticks(range(len(params) + 1), [*params, objective], rotation=30, ha="right", fontsize=8)
    ax.set_yticks([])
    ax.set_title(f"Parallel coordinates (darker: lower {objective})")
    return _save(fig, out / "parallel_coordinates.png")


def param_importance(rows: list[dict], objective: str, params: list[str], out: Path) -> Path:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    scored = [r for r in rows if _number(r[f"best_{objective}"]) is not None]
    varied = [p for p in params if len({r[p] for r in scored}) > 1]
    fig, ax = plt.subplots(figsize=(6, 0.5 * max(2, len(varied)) + 1))
    if len(scored) >= 2 and varied:
        distributions = {}
        for p in varied:
            numbers = [_number(r[p]) for r in scored]
            if all(n is not None for n in numbers) and len(set(numbers)) > 3:
                distributions[p] = optuna.distributions.FloatDistribution(min(numbers), max(numbers))
            else:
                distributions[p] = optuna.distributions.CategoricalDistribution(sorted({r[p] for r in scored}))
        study = optuna.create_study(direction="minimize")
        for r in scored:
            values = {p: (_number(r[p]) if isinstance(d, optuna.distributions.FloatDistribution) else r[p])
                      for p, d in distributions.items()}
            study.add_trial(optuna.trial.create_trial(params=values, distributions=distributions,
                                                      value=_number(r[f"best_{objective}"])))
        importance = optuna.importance.get_param_importances(study)
        names = list(importance)[::-1]
        ax.barh(names, [importance[n] for n in names])
    else:
        ax.text(0.5, 0.5, "needs two scored trials and a varied parameter", ha="center", va="center")
    ax.set(xlabel=f"importance for {objective} (fANOVA)", title="Parameter importance")
    return _save(fig, out / "param_importance.png")


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_report(exp_dir: str | Path) -> list[Path]:
    """Every plot of an experiment, written to ``EXP/plots``."""
    exp_dir = Path(exp_dir)
    rows, objective, params = read_summary(exp_dir)
    out = exp_dir / "plots"
    return [optimization_history(rows, objective, out), learning_curves(exp_dir, rows, objective, out),
            parallel_coordinates(rows, objective, params, out), param_importance(rows, objective, params, out)]
