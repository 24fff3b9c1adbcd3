"""The experiment's own W&B workspace, built by code with W&B's ``wandb-workspaces`` library.

Online, at the end of a search, dist-spk saves a saved view of the project that shows this experiment only (its
runs' group) with the panels a sweep page shows and more:

- **Search**: parallel coordinates over every searched key and the objective's best, parameter importance for the
  objective, and the trial table sorted by the objective's best (pinned columns: the objective, best epoch);
- **Learning curves**: the objective and the task's other validation metrics per epoch, every trial one line, and
  the training loss and learning rate per step (``train_step/*``, at fractional epochs);
- **Worker**: the GPU worker's own utilisation and memory (:mod:`dist_spk.train.worker_metrics`).

The view's URL is printed and kept in ``EXP/wandb/experiment.json``.
"""

from __future__ import annotations

import warnings
from typing import Any

WORKER_KEYS = ("worker/gpu_utilization_percent", "worker/gpu_memory_used_percent", "worker/gpu_max_memory_allocated_gb",
               "worker/cpu_percent", "worker/memory_rss_gb")


def experiment_workspace(*, entity: str, project: str, group: str, objective: str, params: list[str],
                         metrics: list[str]):
    """The workspace of one experiment: its runs (``group``) and their panels. ``params``: the searched keys;
    ``metrics``: the per-epoch metrics its trials report (the objective first)."""
    with warnings.catch_warnings():  # the library still declares pydantic-v1 validators: its warnings, not ours
        warnings.simplefilter("ignore", DeprecationWarning)
        import wandb_workspaces.reports.v2 as wr
        import wandb_workspaces.workspaces as ws

    others = [m for m in metrics if m != objective]
    search = [
        wr.ParallelCoordinatesPlot(title=f"searched keys and best {objective}", columns=[
            *(wr.ParallelCoordinatesPlotColumn(metric=wr.Config(key)) for key in params),
            wr.ParallelCoordinatesPlotColumn(metric=wr.SummaryMetric(f"best/{objective}"))]),
        wr.ParameterImportancePlot(with_respect_to=f"best/{objective}"),
        wr.ScatterPlot(title=f"best {objective} by trial start", x=wr.Metric("CreatedTimestamp"),
                       y=wr.SummaryMetric(f"best/{objective}")),
    ]
    curves = [wr.LinePlot(title=f"{metric} per epoch", x="epoch", y=[metric]) for metric in [objective, *others]]
    curves += [wr.LinePlot(title="training loss per step", x="epoch", y=["train_step/loss"], smoothing_factor=0.6),
               wr.LinePlot(title="learning rate", x="epoch", y=["train_step/lr"])]
    worker = [wr.LinePlot(title=key.removeprefix("worker/"), x="epoch", y=[key]) for key in WORKER_KEYS]
    return ws.Workspace(
        entity=entity, project=project, name=f"dist-spk {group}",
        sections=[ws.Section(name="Search", panels=search, is_open=True),
                  ws.Section(name="Learning curves", panels=curves, is_open=True),
                  ws.Section(name="Worker", panels=worker, is_open=False)],
        runset_settings=ws.RunsetSettings(
            filters=ws.And(ws.Metric("Group") == group, ws.Metric("JobType") == "trial"),
            order=[ws.Ordering(ws.Summary(f"best/{objective}"), ascending=True)],
            pinned_columns=[f"summary:best/{objective}", "summary:best/epoch"]),
    )


def save_workspace(*, entity: str, project: str, group: str, objective: str, params: list[str],
                   metrics: list[str]) -> str:
    """Save the experiment's workspace to the W&B server (``WANDB_BASE_URL``); return its URL."""
    workspace = experiment_workspace(entity=entity, project=project, group=group, objective=objective,
                                     params=params, metrics=metrics)
    return workspace.save().url


def per_epoch_metrics(history: list[dict[str, Any]], objective: str) -> list[str]:
    """The validation metrics a trial reported each epoch, the objective first (bookkeeping left out)."""
    skip = {"epoch", "step", "lr", "epoch_seconds", "wall_time", "startup_seconds"}
    keys = dict.fromkeys(k for row in history for k, v in row.items()
                         if k not in skip and isinstance(v, int | float) and not k.startswith("loss/train"))
    return [objective, *(k for k in keys if k != objective)]
