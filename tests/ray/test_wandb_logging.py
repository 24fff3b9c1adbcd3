"""The search's W&B runs, driven through the Tune callback with stand-in trials and read back from W&B's records."""

from __future__ import annotations

import json
import pickle
import time
import warnings
from types import SimpleNamespace

import pytest

from dist_spk.config import load_config, to_dict
from dist_spk.tune.space import default_space_path, load_space, to_wandb_sweep
from dist_spk.tune.wandb_logging import TrialRuns, register_sweep
from tests.wandb_records import config as wandb_config
from tests.wandb_records import history, kinds, run_info, summary

pytestmark = pytest.mark.ray  # imports Ray's library (tests/unit stays Ray-free); starts no cluster


def test_trial_runs_join_the_sweep_keep_the_best_and_finish(tmp_path, monkeypatch):
    import wandb

    sweep = to_wandb_sweep(load_space(default_space_path("spk"), "spk"), metric="eer", method="random")
    created = []
    monkeypatch.setattr(wandb, "sweep", lambda config, project: created.append(config) or "sw1abc")
    assert register_sweep(tmp_path, sweep, project="p") == "sw1abc"
    assert register_sweep(tmp_path, sweep, project="p") == "sw1abc" and len(created) == 1  # once per experiment
    assert created[0]["controller"] == {"type": "local"}  # W&B shows it, Ray Tune schedules it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sweeps import SweepConfig, next_runs
    assert next_runs(SweepConfig(created[0]), [], validate=True, n=1)  # W&B's engine accepts what we register
    group = json.loads((tmp_path / "wandb" / "experiment.json").read_text())["group"]

    callback = TrialRuns(project="p", exp_dir=tmp_path, objective="eer", base=to_dict(load_config("spk")),
                         offline=True, sweep_id="sw1abc")
    trial = SimpleNamespace(trial_id="t_00000", config={"optim.lr": 0.004})
    callback.on_trial_start(0, [], trial)
    for epoch, eer in enumerate([0.30, 0.12, 0.20]):
        callback.on_trial_result(epoch, [], trial, {"epoch": epoch, "eer": eer, "loss": 1.0 - epoch / 10,
                                                    "config": {"optim.lr": 0.004}, "time_total_s": 3.0,
                                                    "trial_id": "t_00000", "done": False})
    restored = pickle.loads(pickle.dumps(callback))  # Tune pickles callbacks into its state: no open run goes
    assert restored._runs == {} and restored.sweep_id == "sw1abc"
    callback.on_trial_complete(3, [], trial)
    callback.close()  # as at the search's end: the queued W&B calls done, the thread ended

    (path,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    info = run_info(path)
    assert (info.run_id, info.run_group, info.sweep_id, info.display_name) == (f"{group}-t_00000", group, "sw1abc",
                                                                               "t_00000")
    rows = history(path)
    assert [row["eer"] for row in rows] == [0.30, 0.12, 0.20]
    assert not [key for row in rows for key in row if key.startswith("config") or key in ("time_total_s", "done")]
    final = summary(path)
    assert final["eer"] == {"min": 0.12} and final["best/eer"] == 0.12 and final["best/epoch"] == 1
    assert wandb_config(path)["optim.lr"] == 0.004 and wandb_config(path)["model.emb_size"] == 64  # the local preset
    assert "exit" in kinds(path)


def test_runs_left_open_by_an_interrupted_search_are_finished(tmp_path):
    callback = TrialRuns(project="p", exp_dir=tmp_path, objective="eer", base={}, offline=True)
    callback.on_trial_result(0, [], SimpleNamespace(trial_id="a", config={}), {"epoch": 0, "eer": 0.5})
    callback.close()
    (path,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    assert "exit" in kinds(path) and callback._runs == {}


def test_step_logs_stream_between_epochs_and_a_resumed_trial_does_not_repeat_them(tmp_path):
    trial = SimpleNamespace(trial_id="t_00001", config={})
    steps = tmp_path / "trials" / "t_00001" / "steps.jsonl"
    steps.parent.mkdir(parents=True)
    callback = TrialRuns(project="p", exp_dir=tmp_path, objective="eer", base={}, offline=True, poll_seconds=0)
    callback.on_trial_start(0, [], trial)

    def worker_writes(step: int, *, partial: bool = False) -> None:  # as StepLog appends, rank 0 of the trial
        line = json.dumps({"step": step, "epoch": step / 4, "train_step/loss": 1 / step, "train_step/lr": 0.01})
        with steps.open("a") as handle:
            handle.write(line[:10] if partial else line + "\n")

    worker_writes(1)
    worker_writes(2)
    callback.on_step_end(1, [])  # Tune's loop, while the epoch is still running
    callback.flush()  # W&B's calls run on the callback's own thread (its calls return at once)
    worker_writes(3)
    worker_writes(4, partial=True)  # a line the worker is still writing waits
    callback.on_step_end(2, [])
    callback.flush()
    with steps.open("a") as handle:
        handle.write(json.dumps({"step": 4, "epoch": 1.0, "train_step/loss": 0.25, "train_step/lr": 0.01})[10:] + "\n")
    callback.on_trial_result(3, [], trial, {"epoch": 0, "eer": 0.3})  # the epoch's last steps go first
    callback.close()

    # a new driver resumes the search: the trial's run continues, its streamed steps are not sent again
    time.sleep(1.1)  # W&B names offline run folders by the second: the resumed run gets its own
    resumed = TrialRuns(project="p", exp_dir=tmp_path, objective="eer", base={}, offline=True, poll_seconds=0)
    resumed.on_trial_start(0, [], trial)
    worker_writes(5)
    resumed.on_trial_result(1, [], trial, {"epoch": 1, "eer": 0.2})
    resumed.on_trial_complete(2, [], trial)
    resumed.close()

    first, second = sorted((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert [row.get("step", "epoch") for row in history(first)] == [1, 2, 3, 4, "epoch"]
    assert history(first)[3]["train_step/loss"] == 0.25
    assert [row.get("step", "epoch") for row in history(second)] == [5, "epoch"]
    assert "exit" in kinds(first) and "exit" in kinds(second)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
