"""``dist-spk tune sync``: an offline experiment replayed into W&B runs of a sweep, read back from W&B's records."""

from __future__ import annotations

import json

import pytest
import yaml

from dist_spk.config import load_config, save_config
from dist_spk.errors import DistSpkError
from dist_spk.tune.results import trial_rows, write_summary
from dist_spk.tune.wandb_logging import experiment_group
from dist_spk.tune.wandb_sync import replay_trial, sync_experiment
from tests.wandb_records import config as wandb_config
from tests.wandb_records import history, kinds, run_info, summary

pytestmark = pytest.mark.ray  # imports Ray's library (tests/unit stays Ray-free); starts no cluster


def _experiment(tmp_path):
    """What a finished offline search leaves: config, space, summary, each trial's run directory."""
    exp = tmp_path / "exp"
    config = load_config("spk", overrides=["search.wandb_project=voices"])
    save_config(config, exp)
    (exp / "space.yaml").write_text(yaml.safe_dump({"parameters": {"optim.lr": {"values": [0.001, 0.003]}}}))
    trial = exp / "trials" / "a_00000"
    trial.mkdir(parents=True)
    save_config(load_config("spk", overrides=["optim.lr=0.003"]), trial)
    trial.joinpath("metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in (
        {"epoch": 0, "eer": 0.30, "loss/val": 2.0}, {"epoch": 1, "eer": 0.20, "loss/val": 1.5},
        {"epoch": 2, "eer": 0.25, "loss/val": 1.4})))
    trial.joinpath("steps.jsonl").write_text("".join(json.dumps(
        {"step": s, "epoch": s / 4, "train_step/loss": 3 - s / 10, "train_step/lr": 0.003}) + "\n"
        for s in (2, 4, 6, 8, 10, 12)))
    rows = trial_rows(exp, objective="eer", epochs=3, trials=[("a_00000", {"optim.lr": 0.003}, False)])
    write_summary(exp, rows)
    return exp


def test_a_trial_is_replayed_as_its_online_run_would_have_been(tmp_path):
    exp = _experiment(tmp_path)
    folder = replay_trial(exp, "a_00000", status="completed", project="voices", objective="eer", offline=True,
                          sweep_id="sw33p1d8")
    (path,) = folder.glob("run-*.wandb")
    group = experiment_group(exp)
    info = run_info(path)
    assert (info.run_id, info.run_group, info.sweep_id, info.job_type) == (f"{group}-a_00000", group, "sw33p1d8",
                                                                          "trial")
    rows = history(path)
    # each epoch's steps (fractional epochs e..e+1) before the epoch's row, as they streamed during the search
    order = [("step", row["step"]) if "step" in row else ("epoch", row["epoch"]) for row in rows]
    assert order == [("step", 2), ("step", 4), ("epoch", 0), ("step", 6), ("step", 8), ("epoch", 1),
                     ("step", 10), ("step", 12), ("epoch", 2)]
    assert summary(path)["best/eer"] == 0.20 and summary(path)["best/epoch"] == 1
    assert wandb_config(path)["optim.lr"] == 0.003 and "exit" in kinds(path)


def test_sync_needs_an_online_wandb(tmp_path, monkeypatch):
    exp = _experiment(tmp_path)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.delenv("NETRC", raising=False)
    with pytest.raises(DistSpkError, match=r"no W&B key \(set WANDB_API_KEY or run 'wandb login'\)"):
        sync_experiment(exp)
