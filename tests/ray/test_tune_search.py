"""`dist-spk tune` on a local Ray: ASHA, Optuna, W&B offline runs, a killed worker.

(A search killed and resumed is tests/ray/test_storage.py, on an S3 server; a lost node is test_node_loss.py.)
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from dist_spk.tune.plots import PLOTS
from dist_spk.tune.study import load_study
from tests.conftest import CLI, short_epochs
from tests.wandb_records import config as wandb_config
from tests.wandb_records import history as wandb_history
from tests.wandb_records import kinds as wandb_kinds
from tests.wandb_records import records as wandb_records
from tests.wandb_records import run_info as wandb_run
from tests.wandb_records import summary as wandb_summary
from tests.wandb_records import trial_runs

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SPACE = """
parameters:
  optim.lr: {distribution: log_uniform_values, min: 1.0e-3, max: 1.0e-2}
  head.margin: {distribution: uniform, min: 0.1, max: 0.3}
"""


def tune_command(corpus: Path, exp: Path, space: Path, *extra: str) -> list[str]:
    return [*CLI, "tune", "spk", "--data", str(corpus / "spk"), "--out", str(exp), "--space", str(space),
            "--set", "data.batch_size=64", *short_epochs("spk"), *extra]


def run(command: list[str], timeout: int = 1200) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "WANDB_API_KEY"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result


def metrics_of(exp: Path) -> dict[str, list[dict]]:
    return {trial.name: [json.loads(line) for line in (trial / "metrics.jsonl").read_text().splitlines()]
            for trial in sorted((exp / "trials").iterdir()) if (trial / "metrics.jsonl").is_file()}


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(SPACE)
    return path


def test_asha_search_runs_concurrent_trials_stops_some_early_and_logs_to_wandb(small_corpus, tmp_path, space):
    exp = tmp_path / "exp"
    started = time.perf_counter()
    result = run(tune_command(small_corpus, exp, space, "--num-samples", "6", "--set", "trainer.epochs=4",
                              "--set", "search.grace_period=1", "--set", "search.reduction_factor=2"))
    print(f"6-trial ASHA search: {time.perf_counter() - started:.0f} s")
    assert "2 trial(s) at once" in result.stdout  # 2 cores: both run at once
    rows = (exp / "summary.csv").read_text().splitlines()
    assert len(rows) == 7
    histories = metrics_of(exp)
    assert len(histories) == 6
    assert any(len(h) < 4 for h in histories.values())  # ASHA stopped a trial early
    assert any(len(h) == 4 for h in histories.values())
    assert "stopped early" in (exp / "summary.csv").read_text()
    best = json.loads((exp / "best" / "metrics.json").read_text())
    assert best["best"]["eer"] == min(row["eer"] for h in histories.values() for row in h)
    assert (exp / "best" / "checkpoint.ckpt").is_file()
    # every trial is a W&B run of the experiment's own group, holding its per-epoch metrics, its config (not in
    # history), its best EER in the summary, and W&B's exit record: complete when tune returned
    files = sorted((exp / "wandb").glob("offline-run-*/run-*.wandb"))
    runs = [path for path in files if wandb_run(path).job_type == "trial"]
    assert len(runs) == 6
    group = json.loads((exp / "wandb" / "experiment.json").read_text())["group"]
    assert group.startswith("exp-") and group != "exp"
    for path in runs:
        info = wandb_run(path)
        trial = info.display_name
        assert info.run_group == group and info.run_id == f"{group}-{trial}" and info.job_type == "trial"
        rows = wandb_history(path)
        logged = [row["eer"] for row in rows if "eer" in row]
        # a stopped trial's worker may finish one more epoch before Tune's stop reaches it
        assert 1 <= len(logged) <= len(histories[trial])
        assert logged == pytest.approx([row["eer"] for row in histories[trial][: len(logged)]])
        assert not [key for row in rows for key in row if key.startswith("config/")]
        # rank 0's step log reached the trial's run through Tune's event loop, every row once, in order
        steps_file = exp / "trials" / trial / "steps.jsonl"
        lines = steps_file.read_text().splitlines() if steps_file.is_file() else []
        written = [json.loads(line)["step"] for line in lines]
        assert [row["step"] for row in rows if "train_step/loss" in row] == written
        assert 1e-3 <= wandb_config(path)["optim.lr"] <= 1e-2 and wandb_config(path)["trainer.epochs"] == 4
        final = wandb_summary(path)
        assert final["eer"] == {"min": pytest.approx(min(logged))} and final["best/eer"] == pytest.approx(min(logged))
        assert final["best/epoch"] == next(row["epoch"] for row in rows if row.get("eer") == final["best/eer"])
        assert "exit" in wandb_kinds(path)
    # and one experiment run: the best trial in its summary, EXP/best as a model artifact
    (experiment,) = [path for path in files if wandb_run(path).job_type == "experiment"]
    assert wandb_run(experiment).run_group == group
    assert wandb_summary(experiment)["best/eer"] == pytest.approx(best["best"]["eer"])
    artifacts = [r.artifact for r in wandb_records(experiment) if r.WhichOneof("record_type") == "artifact"]
    (model,) = [a for a in artifacts if a.type == "model"]
    assert {entry.path for entry in model.manifest.contents} == {"checkpoint.ckpt", "config.yaml", "metrics.json",
                                                                 "pytorch_model.bin"}  # the pyannote model folder
    assert "wandb sync" in result.stdout
    # the console, captured (not a terminal): one plain line per trial event and the closing summary; Ray's, the
    # workers' and W&B's own lines in EXP/logs/ instead
    assert_no_internals(result.stdout + result.stderr)
    lines = result.stdout.splitlines()
    assert len(lines) < 6 * (1 + 4 + 1) + 25
    for trial in histories:
        assert sum(line.startswith(f"[search] {trial} started (") for line in lines) == 1
        assert sum(line.startswith(f"[search] {trial} ") and (" completed after " in line or " stopped early by ASHA "
                                                              "after " in line) for line in lines) == 1
        received = len((exp / "tune" / trial / "result.json").read_text().splitlines())  # what Tune got
        assert sum(line.startswith(f"[search] {trial} epoch ") for line in lines) == received
    assert "trials by best eer" in result.stdout and "6 trials (" in result.stdout
    # 1-worker trials of the local test mode train in their Tune trial's own process, which Tune reuses: after the
    # first two (2 at a time), a trial starts with nothing to import and no worker group to wait for
    pids = {trial: {json.loads(line)["pid"] for line in (exp / "tune" / trial / "result.json").read_text().splitlines()}
            for trial in histories}
    assert all(len(found) == 1 for found in pids.values()) and len(set.union(*pids.values())) <= 2
    startups = sorted(json.loads((exp / "trials" / trial / "startup.json").read_text())["total"] for trial in histories)
    assert startups[3] < 2.0  # the fourth quickest: a warm process (a worker group took 12-16 s here)
    logs = exp / "logs"
    assert f"[tune] Ray's, the workers' and W&B's messages: {logs}/" in result.stdout
    assert "Started a local Ray instance" in (logs / "driver.log").read_text()
    assert "(trial_driver pid=" in (logs / "workers.log").read_text()  # trials train in their Tune process (below)
    for trial in histories:
        worker_lines = (logs / f"trial-{trial}.log").read_text()
        assert f"[trial {trial}] [epoch 0] " in worker_lines and "(trial_driver pid=" in worker_lines


INTERNALS = ("pid=", "TrainController", "RayTrainWorker", "PlacementGroupCleaner", "raylet", "Warning", "WARNING",
             "INFO", "wandb:", "Trial status", "repeated", "Traceback", "Checkpoint successfully created")


def assert_no_internals(console: str) -> None:
    found = [line for line in console.splitlines() if any(word in line for word in INTERNALS)]
    assert not found, "\n".join(found[:20])


def test_optuna_search_one_trial_at_a_time(small_corpus, tmp_path, space):
    exp = tmp_path / "exp"
    result = run(tune_command(small_corpus, exp, space, "--num-samples", "2", "--search", "optuna", "--scheduler",
                              "fifo", "--set", "trainer.epochs=2", "--set", "search.max_concurrent=1", "--verbose"))
    # --verbose: the workers' lines on the console too, each naming its trial, none folded by Ray
    histories = metrics_of(exp)
    for trial in histories:
        assert "pid=" in result.stdout and f"trial {trial}) [trial {trial}] [epoch 1] " in result.stdout
    assert "repeated" not in result.stdout + result.stderr and "Started a local Ray instance" in result.stderr
    assert len(histories) == 2 and all(len(h) == 2 for h in histories.values())
    assert list((exp / "tune").glob("searcher-state-*.pkl"))  # OptunaSearch saved its study
    # one at a time: each trial's first report comes after the previous trial's last one
    spans = []
    for result in (exp / "tune").glob("*/result.json"):
        stamps = [json.loads(line)["timestamp"] for line in result.read_text().splitlines() if line.strip()]
        spans.append((min(stamps), max(stamps)))
    spans.sort()
    assert len(spans) == 2
    assert all(later[0] > earlier[1] for earlier, later in zip(spans, spans[1:], strict=False))
    # every W&B run file complete (W&B's exit record), the search an Optuna study with its plots
    files = list((exp / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 3 and all("exit" in wandb_kinds(path) for path in files)
    study = load_study(exp)
    assert sorted(t.user_attrs["trial_id"] for t in study.trials) == sorted(histories)
    assert {len(t.intermediate_values) for t in study.trials} == {2}
    assert sorted(p.name for p in (exp / "plots").glob("*.png")) == sorted(f"{name}.png" for name in PLOTS)


def _kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


@pytest.mark.chaos
def test_a_killed_worker_restarts_from_its_checkpoint(small_corpus, tmp_path, space):
    exp = tmp_path / "exp"
    # a Ray Train worker group (a 1-worker local trial would train in its Tune trial's process): the cluster path
    command = tune_command(small_corpus, exp, space, "--num-samples", "1", "--scheduler", "fifo",
                           "--set", "trainer.epochs=5", "--set", "search.in_process_trials=false")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    deadline = time.time() + 600
    killed = None
    while time.time() < deadline and killed is None:
        histories = metrics_of(exp) if (exp / "trials").is_dir() else {}
        if any(len(h) >= 2 for h in histories.values()):
            # only this search's workers: they share the session of the process started above
            pids = subprocess.run(["pgrep", "-s", str(process.pid), "-f", "ray::RayTrainWorker"],
                                  capture_output=True, text=True).stdout.split()
            if pids:
                killed = int(pids[0])
                os.kill(killed, signal.SIGKILL)
        time.sleep(1)
    assert killed is not None, "no worker to kill"
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output[-4000:]
    (history,) = metrics_of(exp).values()
    assert [row["epoch"] for row in history] == [0, 1, 2, 3, 4]  # resumed, nothing repeated or lost
    # the restarted group's first epoch does not report the time since the trial's first launch as start-up
    assert [row["epoch"] for row in history if "startup_seconds" in row] == [0]


def test_pbt_continues_the_weaker_trial_from_the_stronger_ones_checkpoint_with_its_new_lr(small_corpus, tmp_path,
                                                                                        space):
    exp = tmp_path / "exp"
    # 5 epochs: PBT exploits only when both trials have reported; their start-ups differ by up to ~10 s on 2 cores,
    # and with 3 epochs (~9 s) one trial could finish before the other's first result (seen once in make test)
    result = run(tune_command(small_corpus, exp, space, "--num-samples", "2", "--scheduler", "pbt",
                              "--set", "trainer.epochs=5", "--set", "search.perturbation_interval=1"))
    histories = metrics_of(exp)
    assert len(histories) == 2
    starts = {trial: [json.loads(line) for line in (exp / "trials" / trial / "starts.jsonl").read_text().splitlines()]
              for trial in histories}
    exploited = [trial for trial, rows in starts.items() if any(row["resumed_from"] for row in rows)]
    assert exploited, result.stdout[-3000:]  # at least one trial continued from a (donor's) Tune checkpoint
    for trial in exploited:  # each continuation a new Ray Train run, from a checkpoint Ray stored (kept under PBT)
        for row in starts[trial][1:]:
            assert row["train_run"].startswith(f"train-{trial}-") and Path(row["resumed_from"]).is_file()
    for trial, history in histories.items():
        epochs = [row["epoch"] for row in history]
        assert epochs == sorted(set(epochs)) and epochs[-1] == 4, (trial, epochs)  # never an epoch twice
        final = yaml.safe_load((exp / "trials" / trial / "config.yaml").read_text())
        # the epoch after the last exploit trained with the trial's (perturbed) lr, not the checkpoint's
        assert history[-1]["lr"] == pytest.approx(final["optim"]["lr"]), trial


def test_a_variant_list_runs_one_trial_per_variant_with_its_keys(small_corpus, tmp_path):
    space = tmp_path / "variants.yaml"
    space.write_text("variants:\n"
                     "  - {name: adam_small, optim.name: adam, head.margin: 0.1}\n"
                     "  - {name: nadam_cosine, optim.name: nadam, lr_schedule.name: cosine}\n"
                     "  - {name: wide, model.emb_size: 128}\n"
                     "parameters:\n  optim.lr: {value: 0.003}\n")
    exp = tmp_path / "exp"
    run(tune_command(small_corpus, exp, space, "--scheduler", "fifo", "--num-samples", "1", "--set",
                     "trainer.epochs=1"))
    assert len(list((exp / "trials").iterdir())) == 3  # each variant once
    with (exp / "summary.csv").open() as handle:
        rows = {row["variant"]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"adam_small", "nadam_cosine", "wide"}
    configs = {name: yaml.safe_load((exp / "trials" / row["trial_id"] / "config.yaml").read_text())
               for name, row in rows.items()}
    assert (configs["adam_small"]["optim"]["name"], configs["adam_small"]["head"]["margin"]) == ("adam", 0.1)
    assert (configs["nadam_cosine"]["optim"]["name"], configs["nadam_cosine"]["lr_schedule"]["name"]) == ("nadam",
                                                                                                       "cosine")
    assert configs["wide"]["model"]["emb_size"] == 128 and configs["wide"]["optim"]["name"] == "adam"  # preset's
    assert {c["optim"]["lr"] for c in configs.values()} == {0.003}
    names = {wandb_run(path).display_name for path in trial_runs(exp)}  # W&B run names carry the variant
    assert names == {f"{row['trial_id']}-{name}" for name, row in rows.items()}
    assert yaml.safe_load((exp / "space.yaml").read_text())["variants"][2] == {"name": "wide", "model.emb_size": 128}
