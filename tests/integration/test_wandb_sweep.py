"""Exported W&B sweeps, checked by W&B's own sweep engine (`sweeps`) and run the way `wandb agent` runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import pytest
import yaml

from tests.conftest import run_cli
from tests.wandb_records import history as wandb_history
from tests.wandb_records import run_info as wandb_run
from tests.wandb_records import summary as wandb_summary

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # sweeps 0.2 still speaks pydantic v1's config keys
    from sweeps import SweepConfig, next_runs
from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

GRIDDABLE = {"spk": "parameters:\n  head.scale: {values: [16.0, 32.0]}\n  model.num_blocks: {values: [2, 4]}\n",
             "seg": "parameters:\n  optim.name: {values: [adam, nadam]}\n  loss.name: {values: [bce, bce+dice]}\n"}


def _export(*args) -> dict:
    result = run_cli("tune", "export-sweep", *args)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


@pytest.mark.parametrize("task", ["seg", "spk"])
@pytest.mark.parametrize("method", ["random", "bayes", "grid"])
def test_every_exported_sweep_is_accepted_by_wandbs_engine(task, method, tmp_path):
    space = []
    if method == "grid":
        (tmp_path / "space.yaml").write_text(GRIDDABLE[task])
        space = ["--space", tmp_path / "space.yaml"]
    sweep = _export(task, "--method", method, "--data", "/data/corpus", *space)
    assert sweep["command"][:4] == ["${env}", "dist-spk", "train", task] and sweep["command"][-1] == "${args}"
    assert sweep["early_terminate"]["type"] == "hyperband"
    (proposal,) = next_runs(SweepConfig(sweep), [], validate=True, n=1)
    assert set(proposal.config) == set(sweep["parameters"])


def test_sweeps_wandb_would_refuse_are_refused(tmp_path):
    grid = run_cli("tune", "export-sweep", "spk", "--method", "grid")  # the shipped space has continuous keys
    assert grid.returncode == 2 and "optim.lr" in grid.stderr and "continuous" in grid.stderr
    with pytest.raises(ValueError, match="disallowed type with grid search"):  # and W&B agrees
        next_runs(SweepConfig({**_export("spk", "--method", "bayes"), "method": "grid"}), [], validate=True, n=1)
    hyperband = run_cli("tune", "export-sweep", "spk", "--method", "hyperband")
    assert hyperband.returncode == 2 and "early_terminate" in hyperband.stderr


@pytest.mark.slow
def test_a_wandb_agent_run_trains_and_reports_the_metric_every_epoch(small_corpus, tmp_path):
    (tmp_path / "space.yaml").write_text(
        "parameters:\n  optim.lr: {values: [1.0e-3, 3.0e-3]}\n  trainer.epochs: {value: 2}\n"
        "  trainer.workers: {value: 0}\n  data.batch_size: {value: 64}\n  trainer.log_every_n_steps: {value: 2}\n"
        "  data.crops_per_epoch: {value: 0}\n")
    runs = tmp_path / "runs"
    sweep = _export("spk", "--space", tmp_path / "space.yaml", "--method", "random", "--data",
                    small_corpus / "spk", "--runs-dir", runs)
    (proposal,) = next_runs(SweepConfig(sweep), [], validate=True, n=1)
    # the argv exactly as wandb_agent.Agent._command_run builds it (wandb 0.31), from W&B's own helpers
    variables = {**create_sweep_command_args({"args": proposal.config}), "env": ["/usr/bin/env"]}
    argv = []
    for chunk in create_sweep_command(list(sweep["command"])):
        argv += variables.get(chunk[2:-1]) or [] if chunk.startswith("${") and chunk.endswith("}") else [chunk]
    assert "--trainer.epochs=2" in argv and any(a.startswith("--optim.lr=") for a in argv)
    env = {**os.environ, "WANDB_RUN_ID": "agentrun1", "WANDB_SWEEP_ID": "sweep42", "WANDB_MODE": "offline",
           "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"}
    env.pop("WANDB_API_KEY", None)
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = runs / "agentrun1"
    assert (run_dir / "metrics.jsonl").read_text().count("\n") == 2
    (path,) = (run_dir / "wandb").glob("offline-run-*/run-agentrun1.wandb")
    info = wandb_run(path)
    assert info.run_id == "agentrun1" and info.sweep_id == "sweep42" and info.job_type == "train"
    logged = [(row["epoch"], row["eer"]) for row in wandb_history(path) if "eer" in row]
    assert [epoch for epoch, _ in logged] == [0, 1]
    assert wandb_summary(path)["eer"] == {"min": pytest.approx(min(eer for _, eer in logged))}
    # rank 0's step log, streamed inside the epochs: every second optimizer step, before its epoch's row
    steps = [json.loads(line) for line in (run_dir / "steps.jsonl").read_text().splitlines()]
    assert steps and all(row["step"] % 2 == 0 for row in steps)
    streamed = [row for row in wandb_history(path) if "train_step/loss" in row]
    assert [row["step"] for row in streamed] == [row["step"] for row in steps]
    assert all(row["train_step/lr"] > 0 for row in streamed) and 0 < streamed[0]["epoch"] <= 1
    # with the worker's own system metrics (this CPU run: no GPU keys)
    assert all(row["worker/memory_rss_gb"] > 0.1 and row["worker/cpu_percent"] >= 0 for row in streamed)
    assert not [key for row in streamed for key in row if key.startswith("worker/gpu")]
