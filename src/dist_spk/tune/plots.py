"""``dist-spk report EXP``: the seed teams' plots of a search, drawn by ``optuna.visualization`` from the
experiment's Optuna study (:mod:`dist_spk.tune.study`, also written to ``EXP/optuna.journal``):

- ``optimization_history.png``: each trial's best objective in start order, and the best so far;
- ``learning_curves.png``: the objective per epoch of every trial (ASHA's early stops show as short lines);
- ``parallel_coordinates.png``: every searched parameter on its own axis, one line per trial, coloured by
  its best objective;
- ``param_importance.png``: Optuna's fANOVA importance of each parameter for the objective;
- ``contour.png``: the objective over the two most important parameters;
- ``metric_curves.png``: every metric the trials reported per epoch (loss, accuracy, lr, EER, DER and its
  components, ...), one panel per metric, one line per trial (named with its variant, if any), from
  ``EXP/trials/*/metrics.jsonl``.

A plot that needs more than the search has (importance and contour need two scored trials and a varied
parameter, contour two) is drawn as a panel saying so, so the set of files is always the same.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from dist_spk.tune.study import load_study, save_study  # noqa: E402

PLOTS = ("optimization_history", "learning_curves", "parallel_coordinates", "param_importance", "contour",
         "metric_curves")
# per-epoch bookkeeping, not metrics
NOT_CURVES = {"epoch", "step", "wall_time", "epoch_seconds", "startup_seconds", "margin"}


def _varied(study) -> list[str]:
    """Searched keys that took more than one value among the scored trials."""
    trials = [t for t in study.trials if t.value is not None]
    keys = dict.fromkeys(k for t in trials for k in t.params)
    return [k for k in keys if len({repr(t.params.get(k)) for t in trials}) > 1]


def _important(study, varied: list[str]) -> list[str]:
    """The varied keys, most important first (fANOVA); none when fewer than two trials scored."""
    import optuna

    if len([t for t in study.trials if t.value is not None]) < 2 or not varied:
        return []
    return list(optuna.importance.get_param_importances(study, params=varied))


def _draw(name: str, study, objective: str, varied: list[str], important: list[str]):
    """One plot's axes (Optuna's matplotlib backend), with our axis names."""
    from optuna.visualization import matplotlib as vis

    if name == "optimization_history":
        ax = vis.plot_optimization_history(study, target_name=objective)
        ax.set_xlabel("trial (in start order)")
    elif name == "learning_curves":
        ax = vis.plot_intermediate_values(study)
        ax.set(xlabel="epoch", ylabel=objective, title="Learning curves (short lines: stopped early)")
        if ax.get_legend() is not None and len(study.trials) > 12:
            ax.get_legend().remove()
    elif name == "parallel_coordinates":
        ax = vis.plot_parallel_coordinate(study, params=varied or None, target_name=objective)
        ax.figure.set_size_inches(1.6 * (len(varied) + 1), 5)  # room for each axis' tick labels
    elif name == "param_importance":
        if not important:
            return _note("Parameter importance", "needs two scored trials and a varied parameter")
        ax = vis.plot_param_importances(study, params=varied, target_name=objective)
    elif name == "contour":
        if len(important) < 2:
            return _note("Contour", "needs two scored trials and two varied parameters")
        ax = vis.plot_contour(study, params=important[:2], target_name=objective)
    return ax


def _plot(name: str, exp_dir: Path, study, objective: str, varied: list[str], important: list[str]):
    return _metric_curves(exp_dir) if name == "metric_curves" else _draw(name, study, objective, varied, important)


def _metric_curves(exp_dir: Path):
    """A grid of panels, one per reported metric, with every trial's per-epoch values."""
    import math

    from dist_spk.runs.run_dir import read_metrics
    from dist_spk.tune.results import read_summary

    rows, _, _ = read_summary(exp_dir)
    names = {r["trial_id"]: f"{r['trial_id']} {r['variant']}" if r.get("variant") else r["trial_id"] for r in rows}
    histories = {trial: read_metrics(exp_dir / "trials" / trial) for trial in names}
    metrics = sorted({k for h in histories.values() for row in h for k, v in row.items()
                      if k not in NOT_CURVES and isinstance(v, int | float) and not isinstance(v, bool)})
    if not metrics:
        return _note("Metric curves", "no trial reported an epoch")
    columns = min(4, len(metrics))
    fig, axes = plt.subplots(math.ceil(len(metrics) / columns), columns, squeeze=False,
                             figsize=(3.6 * columns, 2.6 * math.ceil(len(metrics) / columns)))
    for ax, metric in zip(axes.flat, metrics, strict=False):
        for trial, history in histories.items():
            points = [(row["epoch"], row[metric]) for row in history if row.get(metric) is not None]
            if points:
                ax.plot(*zip(*points, strict=True), marker=".", linewidth=1, label=names[trial])
        ax.set_title(metric, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs
    for ax in list(axes.flat)[len(metrics):]:
        ax.axis("off")
    if len(names) <= 12:
        axes.flat[0].legend(fontsize=6)
    axes.flat[0].figure.suptitle("Every metric per epoch, one line per trial")
    return axes


def _note(title: str, text: str):
    _, ax = plt.subplots(figsize=(6, 3))
    ax.text(0.5, 0.5, text, ha="center", va="center")
    ax.set(title=title, xticks=[], yticks=[])
    return ax


def _save(ax, path: Path) -> Path:
    fig = ax.figure if hasattr(ax, "figure") else ax.flat[0].figure
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.set_size_inches(max(fig.get_size_inches()[0], 7), max(fig.get_size_inches()[1], 4.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def draw_report(exp_dir: str | Path) -> list[Path]:
    """Write ``EXP/optuna.journal`` and every plot into ``EXP/plots``; return the plots' paths."""
    import optuna

    exp_dir = Path(exp_dir)
    save_study(exp_dir)

    study = load_study(exp_dir)
    objective = study.user_attrs["objective"]
    out = exp_dir / "plots"
    paths = []
    with warnings.catch_warnings():
        # Optuna marks its matplotlib backend experimental (a warning per call); it is what we want to use
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        varied = _varied(study)
        important = _important(study, varied)  # fANOVA once, for the importance and contour plots
        for name in PLOTS:
            paths.append(_save(_plot(name, exp_dir, study, objective, varied, important), out / f"{name}.png"))
    return paths
