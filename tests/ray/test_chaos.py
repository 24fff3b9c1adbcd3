"""Fault injection: W&B unreachable with a key set, secrets never written, broken or foreign checkpoints.

(A killed training worker and a killed search are in test_tune_search.py, also marked ``chaos``.)
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import CLI, run_cli, short_epochs
from tests.wandb_records import history as wandb_history
from tests.wandb_records import trial_runs

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

WANDB_KEY = "0123456789abcdef0123456789abcdef" + "deadbeef"  # 40 characters, like a real key
HF_TOKEN = "hf_" + "SecretTokenThatMustNeverBeWritten"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket closes


def files_containing(root: Path, secrets: tuple[str, ...]) -> list[str]:
    found = []
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            found += [f"{path}: {secret[:6]}..." for secret in secrets if secret.encode() in data]
    return found


@pytest.mark.ray
def test_unreachable_wandb_with_a_key_finishes_offline_fast_and_no_secret_is_written(small_corpus, tmp_path):
    exp = tmp_path / "exp"
    env = {**os.environ, "WANDB_API_KEY": WANDB_KEY, "HF_TOKEN": HF_TOKEN,
           "WANDB_BASE_URL": f"http://127.0.0.1:{closed_port()}"}
    env.pop("WANDB_MODE", None)
    command = [*CLI, "tune", "spk", "--data", str(small_corpus / "spk"), "--out", str(exp), "--num-samples", "1",
               "--scheduler", "fifo", "--set", "trainer.epochs=2", "--set", "data.batch_size=64", *short_epochs("spk")]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output, _ = process.communicate(timeout=900)
    exited = time.time()
    assert process.returncode == 0, output[-4000:]
    assert "unreachable: logging offline" in output
    (trial,) = (exp / "trials").iterdir()
    last_epoch_written = (trial / "metrics.jsonl").stat().st_mtime
    assert exited - last_epoch_written < 30, f"exited {exited - last_epoch_written:.0f} s after the last epoch"
    (run,) = trial_runs(exp)
    assert len([row for row in wandb_history(run) if "eer" in row]) == 2  # the offline files hold the epochs
    secrets = (WANDB_KEY, HF_TOKEN)
    assert not any(secret in output for secret in secrets)
    assert not files_containing(exp, secrets)
    session = Path("/tmp/ray/session_latest")  # the local Ray this search started
    assert not files_containing(session.resolve() / "logs", secrets)


def test_broken_or_foreign_checkpoints_are_one_clear_error(seg_run, spk_run, small_corpus, tmp_path):
    foreign = run_cli("evaluate", "spk", "--checkpoint", seg_run[0], "--data", small_corpus / "spk",
                      "--trials", small_corpus / "spk" / "trials.txt")
    assert foreign.returncode == 2 and "Traceback" not in foreign.stderr
    assert "segmentation" in foreign.stderr

    resumed = tmp_path / "resumed"
    shutil.copytree(spk_run[0], resumed)
    last = resumed / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])  # a checkpoint cut short by a crash
    before = (resumed / "metrics.jsonl").read_text()
    truncated = run_cli("train", "spk", "--data", small_corpus / "spk", "--out", resumed, "--workers", "0",
                        "--resume")
    assert truncated.returncode == 2 and "Traceback" not in truncated.stderr
    assert f"{last}: not a readable checkpoint" in truncated.stderr
    assert (resumed / "metrics.jsonl").read_text() == before  # nothing was touched

    swapped = tmp_path / "swapped"
    shutil.copytree(spk_run[0], swapped)
    shutil.copyfile(seg_run[0] / "checkpoints" / "last.ckpt", swapped / "checkpoints" / "last.ckpt")
    wrong = run_cli("train", "spk", "--data", small_corpus / "spk", "--out", swapped, "--workers", "0", "--resume")
    assert wrong.returncode == 2 and "a segmentation checkpoint, but this is a speaker-encoder run" in wrong.stderr
    assert json.loads((swapped / "summary.json").read_text()) == json.loads((spk_run[0] / "summary.json").read_text())
