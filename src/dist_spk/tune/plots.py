"""``dist-spk report EXP``: the seed teams' plots of a search, drawn by ``optuna.visualization`` from the
experiment's Optuna study (:mod:`dist_spk.tune.study`, also written to ``EXP/optuna.journal``):

- ``optimization_history.png``: each trial's best objective in start order, and the best so far;
- ``learning_curves.png``: the objective per epoch of every trial (ASHA's early stops show as short lines);
- ``parallel_coordinates.png``: every searched parameter on its own axis, one line per trial, coloured by
  its best objective;
- ``param_importance.png``: Optuna's fANOVA importance of each parameter for the objective;
- ``contour.png``: the objective over the two most important parameters.

A plot that needs more than the search has (importance and contour need two scored trials and a varied
parameter, contour two) is drawn as a panel saying so, so the set of files is always the same.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from dist_spk.tune.study import load_study, save_study  # noqa: E402

PLOTS = ("optimization_history", "learning_curves", "parallel_coordinates", "param_importance", "contour")


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
    else:
        if len(important) < 2:
            return _note("Contour", "needs two scored trials and two varied parameters")
        ax = vis.plot_contour(study, params=important[:2], target_name=objective)
    return ax


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
            paths.append(_save(_draw(name, study, objective, varied, important), out / f"{name}.png"))
    return paths
