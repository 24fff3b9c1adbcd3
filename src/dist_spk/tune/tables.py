"""``dist-spk report EXP --tables``: the seed teams' per-epoch tables, one per trial, and one comparison table.

The segmentation team pasted, per variant, a table of every epoch with the columns ``loss/val/segmentation |
loss/val/vad | loss/val | DiarizationErrorRate | Confusion | FalseAlarm | Miss | Threshold`` (then the training
losses); the speaker team the same for loss, accuracy, lr and EER. Written under ``EXP/report/`` from each trial's
``metrics.jsonl``: ``<trial>.md`` and ``<trial>.csv``, and ``comparison.md``/``.csv`` (best objective and its epoch,
last objective, epochs, training time, and the trial's searched values). Markdown is written by hand (a pipe
table is a few lines; no tabulate dependency for it).
"""

from __future__ import annotations

import csv
from pathlib import Path

from dist_spk.runs.run_dir import read_metrics

# (metric key in metrics.jsonl, column title), in the seed tables' order
COLUMNS = {
    "seg": (("loss/val/segmentation", "loss/val/segmentation"), ("loss/val/vad", "loss/val/vad"),
            ("loss/val", "loss/val"), ("DiarizationErrorRate", "DiarizationErrorRate"),
            ("DiarizationErrorRate/Confusion", "Confusion"), ("DiarizationErrorRate/FalseAlarm", "FalseAlarm"),
            ("DiarizationErrorRate/Miss", "Miss"), ("DiarizationErrorRate/Threshold", "Threshold"),
            ("loss/train/segmentation", "loss/train/segmentation"), ("loss/train/vad", "loss/train/vad"),
            ("loss/train", "loss/train")),
    "spk": (("loss", "loss"), ("accuracy", "accuracy"), ("lr", "lr"), ("margin", "margin"), ("eer", "EER"),
            ("min_dcf", "minDCF"), ("ari", "ARI"), ("nmi", "NMI"), ("fmi", "FMI")),
}


def _cell(value) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if 0 < abs(value) < 0.01 else f"{value:.4f}"  # learning rates keep their digits
    return str(value)


def _searched(text: str) -> str:
    """A searched value from summary.csv, short: 0.0002503269968142266 -> 0.00025; names and ints as they are."""
    try:
        number = float(text)
    except ValueError:
        return text
    return f"{number:.3g}" if any(c in text for c in ".e") else text


def markdown(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _write(folder: Path, name: str, title: str, header: list[str], rows: list[list]) -> Path:
    with (folder / f"{name}.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    path = folder / f"{name}.md"
    path.write_text(f"### {title}\n\n" + markdown(header, rows))
    return path


def epoch_table(history: list[dict], task: str) -> tuple[list[str], list[list]]:
    """(header, one row per epoch) in the seed's column order; columns no epoch reported are left out."""
    columns = [(key, title) for key, title in COLUMNS[task] if any(key in row for row in history)]
    header = ["epoch", *(title for _, title in columns)]
    return header, [[row.get("epoch"), *(row.get(key) for key, _ in columns)] for row in history]


def write_tables(exp_dir: Path) -> list[Path]:
    """Every trial's epoch table and the comparison table, under ``EXP/report``; returns the Markdown files,
    the comparison first."""
    from dist_spk.launch.run import task_ranked_by
    from dist_spk.tune.results import read_summary

    exp_dir = Path(exp_dir)
    rows, objective, params = read_summary(exp_dir)
    task = task_ranked_by(objective, source=str(exp_dir / "summary.csv"))
    folder = exp_dir / "report"
    folder.mkdir(exist_ok=True)
    comparison, paths = [], []
    for row in rows:
        history = read_metrics(exp_dir / "trials" / row["trial_id"])
        header, table = epoch_table(history, task)
        paths.append(_write(folder, row["trial_id"], f"trial {row['trial_id']} ({row['status']})", header, table))
        last = history[-1].get(objective) if history else None
        seconds = sum(h.get("epoch_seconds", 0.0) for h in history)
        best = float(row[f"best_{objective}"]) if row[f"best_{objective}"] else None  # csv cells are text
        best_epoch = int(float(row["best_epoch"])) if row["best_epoch"] else None
        comparison.append([row["trial_id"], row["status"], best, best_epoch, last, len(history), f"{seconds:.1f}",
                           *(_searched(row[p]) for p in params)])
    header = ["trial", "status", f"best {objective}", "best epoch", f"last {objective}", "epochs", "train s",
              *params]
    return [_write(folder, "comparison", f"trials by best {objective}", header, comparison), *paths]
