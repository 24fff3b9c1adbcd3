"""A search as an Optuna study on disk: ``EXP/optuna.journal``.

Whatever sampled the trials (Tune's random search, Optuna TPE, PBT), the finished search is written as an Optuna
study so Optuna's own tools open it: ``optuna-dashboard EXP/optuna.journal``, ``optuna.load_study`` (see
:func:`load_study`) and ``optuna.visualization`` (``dist-spk report`` draws its plots with it). One Optuna trial per
Tune trial, in start order:

- ``params``: the trial's sampled values, with the space's distributions (``EXP/space.yaml``; numeric bounds widened
  to hold what PBT's perturbations reached);
- ``value``: the trial's best objective (how ``EXP/best`` ranks trials), ``intermediate_values``: the objective at
  every epoch (the learning curve);
- ``user_attrs``: the Tune trial id, its status (``completed``, ``stopped early`` by ASHA, ``error``), the epoch of
  its best value. A trial stopped early is COMPLETE with its best value, not PRUNED: ASHA's stops are ranked by
  their best like every other trial, and Optuna's plots leave PRUNED trials out. A trial with no score is FAIL.

The journal is rewritten whole (to a temporary file, then renamed) at the end of a search and by ``report``, so a
reader never sees half a study.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from dist_spk.errors import DistSpkError
from dist_spk.runs.run_dir import read_metrics
from dist_spk.tune.space import Param

JOURNAL = "optuna.journal"


def _number(text: Any) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _typed(param: Param, text: str) -> Any:
    """A ``summary.csv`` cell back as the value the trial used (csv keeps only text)."""
    if param.kind in ("choice", "grid", "weighted", "variant"):  # a variant: its name
        return next((v for v in param.args[0] if str(v) == text), text)
    number = _number(text)
    if param.kind == "randint" and number is not None:
        return int(number)
    return number


def distribution(param: Param, observed: list[Any]):
    """The Optuna distribution of a searched key, holding every value the trials used."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if param.kind in ("choice", "grid", "weighted", "variant"):
        values = list(dict.fromkeys([*param.args[0], *observed]))
        return CategoricalDistribution([v if isinstance(v, bool | int | float | str) or v is None else str(v)
                                        for v in values])
    numbers = [v for v in observed if v is not None]
    if param.kind in ("normal", "qnormal"):
        mu, sigma = param.args[0], param.args[1]
        low, high = mu - 3 * sigma, mu + 3 * sigma
    else:
        low, high = param.args[0], param.args[1]
    low, high = min([low, *numbers]), max([high, *numbers])
    if param.kind == "randint":
        return IntDistribution(int(low), int(high))
    return FloatDistribution(float(low), float(high), log=param.kind in ("loguniform", "qloguniform"))


def study_name(exp_dir: Path) -> str:
    """The experiment's W&B group when it has one (the same name in both dashboards), else its folder's name."""
    record = Path(exp_dir) / "wandb" / "experiment.json"
    if record.is_file():
        return json.loads(record.read_text())["group"]
    return Path(exp_dir).resolve().name


def build_study(exp_dir: Path, *, storage=None):
    """The experiment as an Optuna study (in memory, or in ``storage``), from ``summary.csv``, ``space.yaml`` and
    each trial's ``metrics.jsonl``."""
    import optuna
    from optuna.trial import TrialState, create_trial

    from dist_spk.config import read_config_file
    from dist_spk.launch.run import task_ranked_by
    from dist_spk.tune.results import read_summary
    from dist_spk.tune.space import parse_space

    exp_dir = Path(exp_dir)
    rows, objective, columns = read_summary(exp_dir)
    space_file = exp_dir / "space.yaml"
    if not space_file.is_file():
        raise DistSpkError(f"{exp_dir}: no space.yaml; is it a 'dist-spk tune' experiment?")
    task = task_ranked_by(objective, source=str(exp_dir / "summary.csv"))
    params = [p for p in parse_space(read_config_file(space_file), task, source=str(space_file))
              if p.kind != "constant" and p.key in columns]
    typed = {p.key: [_typed(p, row[p.key]) for row in rows] for p in params}
    distributions = {p.key: distribution(p, typed[p.key]) for p in params}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name=study_name(exp_dir), direction="minimize", storage=storage,
                                load_if_exists=False)
    study.set_user_attr("objective", objective)
    order = sorted(range(len(rows)), key=lambda i: rows[i]["trial_id"])  # Tune's ids count up in start order
    for index in order:
        row = rows[index]
        value = _number(row[f"best_{objective}"])
        curve = {int(h["epoch"]): float(h[objective]) for h in read_metrics(exp_dir / "trials" / row["trial_id"])
                 if _number(h.get(objective)) is not None}
        study.add_trial(create_trial(
            state=TrialState.COMPLETE if value is not None else TrialState.FAIL, value=value,
            params={p.key: typed[p.key][index] for p in params if typed[p.key][index] is not None},
            distributions={p.key: distributions[p.key] for p in params if typed[p.key][index] is not None},
            intermediate_values=curve,
            user_attrs={"trial_id": row["trial_id"], "status": row["status"], "best_epoch": _number(row["best_epoch"])},
        ))
    return study


def save_study(exp_dir: Path) -> Path:
    """Write the experiment's study to ``EXP/optuna.journal`` (replacing an earlier one whole)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    from dist_spk.tune.results import read_summary

    read_summary(exp_dir)  # not an experiment: one error, and no journal file
    path = Path(exp_dir) / JOURNAL
    partial = path.with_name(f".{JOURNAL}.partial")
    partial.unlink(missing_ok=True)
    build_study(exp_dir, storage=JournalStorage(JournalFileBackend(str(partial))))
    os.replace(partial, path)
    return path


def load_study(exp_dir: Path):
    """The study ``save_study`` wrote, read back through Optuna's own journal storage."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(exp_dir) / JOURNAL
    if not path.is_file():
        raise DistSpkError(f"{exp_dir}: no {JOURNAL}; run 'dist-spk report {exp_dir}' to write it")
    return optuna.load_study(study_name=None, storage=JournalStorage(JournalFileBackend(str(path))))
