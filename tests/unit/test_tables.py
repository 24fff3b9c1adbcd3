"""``dist-spk report --tables``: the seed teams' per-epoch tables from each trial's metrics.jsonl."""

from __future__ import annotations

import csv
import json

import yaml

from dist_spk.tune.results import trial_rows, write_summary
from dist_spk.tune.tables import write_tables

SEED_COLUMNS = ["epoch", "loss/val/segmentation", "loss/val/vad", "loss/val", "DiarizationErrorRate", "Confusion",
                "FalseAlarm", "Miss", "Threshold", "loss/train/segmentation", "loss/train/vad", "loss/train"]


def _epoch(epoch: int, der: float) -> dict:
    return {"epoch": epoch, "loss/val/segmentation": 0.5 - epoch / 10, "loss/val/vad": 0.1, "loss/val": 0.6,
            "DiarizationErrorRate": der, "DiarizationErrorRate/Confusion": der / 2,
            "DiarizationErrorRate/FalseAlarm": der / 4, "DiarizationErrorRate/Miss": der / 4,
            "DiarizationErrorRate/Threshold": 0.5, "DiarizationErrorRate/Marginal": der,
            "loss/train/segmentation": 0.55, "loss/train/vad": 0.12, "loss/train": 0.67, "lr": 1e-3,
            "epoch_seconds": 10.0}


CURVES = {"t_00000": [0.4, 0.3, 0.35], "t_00001": [0.5]}  # each trial's DER per epoch


def write_trials(exp, curves: dict[str, list[float]]) -> None:
    for trial, ders in curves.items():
        (exp / "trials" / trial).mkdir(parents=True)
        (exp / "trials" / trial / "metrics.jsonl").write_text(
            "".join(json.dumps(_epoch(e, d)) + "\n" for e, d in enumerate(ders)))


def test_every_trial_gets_the_seed_table_and_one_comparison(tmp_path):
    exp = tmp_path / "exp"
    write_trials(exp, CURVES)
    (exp / "space.yaml").write_text(yaml.safe_dump({"parameters": {"optim.lr": {"values": [1e-3, 3e-4]}}}))
    rows = trial_rows(exp, objective="DiarizationErrorRate", epochs=3,
                      trials=[("t_00000", {"optim.lr": 0.00031234}, False), ("t_00001", {"optim.lr": 0.001}, False)])
    write_summary(exp, rows)

    comparison, first, second = write_tables(exp)
    assert comparison.name == "comparison.md" and first.name == "t_00000.md" and second.name == "t_00001.md"
    with first.with_suffix(".csv").open() as handle:
        table = list(csv.reader(handle))
    assert table[0] == SEED_COLUMNS  # the seed's columns, in order
    assert [float(r[4]) for r in table[1:]] == [0.4, 0.3, 0.35]  # one row per epoch
    lines = first.read_text().splitlines()
    assert lines[2] == "| " + " | ".join(SEED_COLUMNS) + " |" and len(lines) == 4 + 3
    with comparison.with_suffix(".csv").open() as handle:
        compared = list(csv.DictReader(handle))
    assert [(r["trial"], r["status"], r["best DiarizationErrorRate"], r["best epoch"], r["last DiarizationErrorRate"])
            for r in compared] == [("t_00000", "completed", "0.3", "1", "0.35"),
                                   ("t_00001", "stopped early", "0.5", "0", "0.5")]
    assert compared[0]["optim.lr"] == "0.000312" and compared[0]["train s"] == "30.0"


def test_metric_curves_draw_every_reported_metric_with_a_line_per_trial_named_by_its_variant(tmp_path):
    from dist_spk.tune.plots import NOT_CURVES, _metric_curves

    exp = tmp_path / "exp"
    write_trials(exp, CURVES)
    rows = trial_rows(exp, objective="DiarizationErrorRate", epochs=3,
                      trials=[("t_00000", {"variant": "adam_20"}, False), ("t_00001", {"variant": "nadam"}, False)])
    write_summary(exp, rows)
    axes = _metric_curves(exp)
    panels = {ax.get_title(): ax for ax in axes.flat if ax.get_title()}
    assert set(panels) == set(_epoch(0, 0.1)) - NOT_CURVES  # lr, losses, DER and its components
    der = panels["DiarizationErrorRate"]
    assert sorted(line.get_label() for line in der.get_lines()) == ["t_00000 adam_20", "t_00001 nadam"]
    (long,) = [line for line in der.get_lines() if line.get_label().startswith("t_00000")]
    assert list(long.get_ydata()) == CURVES["t_00000"]
