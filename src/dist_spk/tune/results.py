"""What a finished search leaves behind: ``summary.csv``, ``best/`` and a table on the terminal.

Figures come from each trial's own ``metrics.jsonl``, so they are the same whether the search ran
in one go or was resumed.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

from dist_spk.errors import DistSpkError
from dist_spk.runs import storage
from dist_spk.runs.run_dir import read_metrics, resolve_checkpoint

STATUS_COMPLETED, STATUS_STOPPED, STATUS_ERROR = "completed", "stopped early", "error"
FIXED_COLUMNS = ("trial_id", "status", "epochs", "best_epoch")


def trial_rows(exp_dir: Path, *, objective: str, epochs: int, trials: list[tuple[str, dict, bool]]) -> list[dict]:
    """One row per trial: id, status, epochs run, best objective (and its epoch), then the sampled params.

    ``trials`` holds ``(trial id, sampled params, errored)``, as Ray Tune reports them.
    """
    rows = []
    for trial_id, params, errored in trials:
        history = read_metrics(exp_dir / "trials" / trial_id)
        scored = [row for row in history if row.get(objective) is not None]
        best = min(scored, key=lambda row: row[objective]) if scored else None
        status = STATUS_ERROR if errored else STATUS_COMPLETED if len(history) >= epochs else STATUS_STOPPED
        rows.append({"trial_id": trial_id, "status": status, "epochs": len(history),
                     f"best_{objective}": best[objective] if best else None,
                     "best_epoch": best["epoch"] if best else None, **params})
    return sorted(rows, key=lambda r: (r[f"best_{objective}"] is None, r[f"best_{objective}"] or 0.0))


def against_baselines(exp_dir: Path, baselines: tuple[str, ...]) -> list[tuple[str, float, dict[str, float]]]:
    """(trial id, best objective, {baseline: its value at that epoch}) for every scored trial of a finished search
    that reports the ``baselines`` metrics (seg: :data:`dist_spk.segmentation.task.SEG_BASELINES`)."""
    rows, objective, _ = read_summary(exp_dir)
    found = []
    for row in rows:
        if not row[f"best_{objective}"]:
            continue
        history = read_metrics(Path(exp_dir) / "trials" / row["trial_id"])
        epoch = next((h for h in history if h["epoch"] == int(float(row["best_epoch"]))), {})
        values = {name: float(epoch[name]) for name in baselines if epoch.get(name) is not None}
        if len(values) == len(baselines):
            found.append((row["trial_id"], float(row[f"best_{objective}"]), values))
    return found


def write_summary(exp_dir: Path, rows: list[dict]) -> Path:
    path = exp_dir / "summary.csv"
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_summary(exp_dir: Path) -> tuple[list[dict], str, list[str]]:
    """(rows, objective, parameter names) of ``EXP/summary.csv`` (every cell as text)."""
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


def export_best(exp_dir: Path, rows: list[dict], *, objective: str, location: str | None = None) -> Path | None:
    """Copy the best trial's config, best checkpoint and metrics into ``EXP/best`` (the one copy of a checkpoint a
    search makes; ``location``: where the trials' checkpoints are, when ``exp_dir`` is a local mirror)."""
    ranked = [r for r in rows if r[f"best_{objective}"] is not None]
    if not ranked:
        return None
    best = ranked[0]
    trial_dir = exp_dir / "trials" / best["trial_id"]
    out = exp_dir / "best"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    shutil.copyfile(trial_dir / "config.yaml", out / "config.yaml")
    checkpoint = best_checkpoint_of(storage.join(location or exp_dir, "trials", best["trial_id"]))
    if checkpoint is not None:
        shutil.copyfile(checkpoint, out / "checkpoint.ckpt")
        try:
            write_pyannote_model(out / "checkpoint.ckpt", out, task=task_of(objective))
        except DistSpkError as err:  # the search's results stand without the pyannote copy
            print(f"[tune] {out}/pytorch_model.bin not written: {err}", flush=True)
    history = read_metrics(trial_dir)
    epoch_row = next(row for row in history if row["epoch"] == best["best_epoch"])
    (out / "metrics.json").write_text(json.dumps({"trial_id": best["trial_id"], "objective": objective,
                                                  "best": epoch_row, "history": history}, indent=1))
    return out


def write_pyannote_model(checkpoint: Path, folder: Path, *, task: str) -> None:
    """``folder/pytorch_model.bin``: the ``task`` checkpoint's model as pyannote loads it
    (``Model.from_pretrained(folder)``), a segmentation PyanNet or our speaker encoder's pyannote wrapper, without
    optimizer state."""
    from dist_spk.pipeline.embedding import SpeakerEncoderModel
    from dist_spk.pipeline.model_folder import write_model_folder
    from dist_spk.segmentation.model import load_pretrained

    model = load_pretrained(str(checkpoint)) if task == "seg" else SpeakerEncoderModel.from_checkpoint(checkpoint)
    write_model_folder(model, folder)


def mirrored_experiment(exp: str | Path, *, only: tuple[str, ...] = ()) -> Path:
    """A finished experiment as a local folder: itself, or (on an object store) its local mirror with the store's small
    files fetched (``only``: just these top-level folders; Tune's state and the checkpoints stay on the store)."""
    if not storage.is_remote(exp):
        return storage.local_path(exp)
    mirror = storage.local_mirror(exp)
    for part in only or ("",):
        storage.download(storage.join(exp, part), mirror / part, skip=storage.HEAVY)
    return mirror


def best_checkpoint_of(run_location: str) -> Path | None:
    """A trial's best checkpoint as a local file (fetched when the run is on an object store), or None."""
    try:
        return resolve_checkpoint(run_location)[0]
    except DistSpkError:  # no epoch finished
        return None


def print_table(rows: list[dict], *, objective: str, params: list[str]) -> None:
    from rich import box
    from rich.table import Table

    from dist_spk.console import rich_console
    from dist_spk.tune.live_view import short_key

    table = Table(title=f"trials by best {objective}", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left",
                  show_edge=False)
    for column in ("trial", "status", "epochs", objective, *(short_key(p, params) for p in params)):
        table.add_column(column, justify="right" if column in ("epochs", objective) else "left", no_wrap=True)
    for row in rows:
        value = row[f"best_{objective}"]
        table.add_row(row["trial_id"], row["status"], str(row["epochs"]), "-" if value is None else f"{value:.4f}",
                      *(_short(row.get(p)) for p in params))
    rich_console().print(table)


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def task_of(objective: str) -> str | None:
    """The task whose searches rank on ``objective`` (None for an unknown one)."""
    from dist_spk.launch.run import OBJECTIVES

    return {metric: task for task, metric in OBJECTIVES.items()}.get(objective)


def best_of_experiment(exp: str) -> tuple[str, Path]:
    """(task, best config file) of a finished search (a path or an object-store URI), with a clear error otherwise."""
    from dist_spk.launch.run import OBJECTIVES

    best = mirrored_experiment(exp, only=("best",)) / "best"
    metrics, config = best / "metrics.json", best / "config.yaml"
    if not metrics.is_file() or not config.is_file():
        raise DistSpkError(f"{exp}: no best/config.yaml and best/metrics.json (not a finished `dist-spk tune` "
                           "experiment; a search writes them when it ends)")
    objective = json.loads(metrics.read_text()).get("objective")
    task = task_of(objective)
    if task is None:
        raise DistSpkError(f"{metrics}: unknown objective {objective!r}; expected one of "
                           f"{', '.join(OBJECTIVES.values())}")
    return task, config
