"""Speaker-encoder training end to end on the synthetic corpus (plain Lightning), then evaluation and export."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from dist_spk.errors import DistSpkError
from dist_spk.launch.run import run_training
from dist_spk.runs.run_dir import read_metrics
from dist_spk.speaker.inference import evaluate_speaker, load_speaker_module
from dist_spk.speaker.module import SPK_METRICS
from tests.conftest import local_config

pytestmark = pytest.mark.slow


def test_local_preset_learns_speakers_far_better_than_chance(spk_run):
    out, summary = spk_run
    rows = read_metrics(out)
    assert len(rows) == 20
    for name in SPK_METRICS:
        assert name in rows[0], name
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert summary["best"]["eer"] < 0.3  # chance is 0.5
    assert rows[-1]["margin"] == pytest.approx(0.2)  # warmed up to the configured margin
    assert rows[0]["margin"] < 0.2
    # trial speakers are held out of training
    data = (out / "data" / "train.jsonl").read_text()
    trial_speakers = {line.split()[1].split("/")[0] for line in (out / "data" / "trials.txt").read_text().splitlines()}
    assert not any(f'"speaker": "{s}"' in data for s in trial_speakers)


def test_evaluate_matches_training_and_as_norm_runs(spk_run, small_corpus):
    out, summary = spk_run
    metrics = evaluate_speaker(out, small_corpus / "spk", small_corpus / "spk" / "trials.txt", asnorm_cohort=10)
    assert metrics["eer"] == pytest.approx(summary["best"]["eer"], abs=1e-6)
    listed = (small_corpus / "spk" / "trials.txt").read_text().splitlines()
    assert metrics["trials"] == len(listed) and 0 <= metrics["eer_asnorm"] < 0.5


def test_resume_continues_and_wrong_checkpoints_are_refused(spk_run, small_corpus, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(spk_run[0], out)
    with (out / "metrics.jsonl").open("a") as handle:  # the process was killed mid-append: a torn last line
        handle.write('{"epoch": 20, "eer": 0.1')
    run_training("spk", local_config("spk", small_corpus / "spk", **{"trainer.epochs": 21}), out=out, resume=True)
    assert [row["epoch"] for row in read_metrics(out)] == list(range(21))
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"garbage")
    with pytest.raises(DistSpkError, match="not a readable checkpoint"):
        load_speaker_module(broken)


def test_trains_on_segments_cut_from_a_diarization_dataset(small_corpus, tmp_path):
    # no trial list there: held-out speakers and a balanced list are generated
    config = local_config("spk", small_corpus / "diar", **{"data.speaker_scope": "global", "trainer.epochs": 1,
                                                  "data.heldout_fraction": 0.25})
    run_training("spk", config, out=tmp_path / "diar-spk")
    (row,) = read_metrics(tmp_path / "diar-spk")
    assert 0.0 <= row["eer"] <= 1.0
    trials = (tmp_path / "diar-spk" / "data" / "trials.txt").read_text().splitlines()
    labels = np.array([int(line.split()[0]) for line in trials])
    assert len(trials) > 0 and labels.mean() == pytest.approx(0.5)


def test_train_best_retrains_a_searchs_best_config_longer(spk_run, tmp_path):
    import json

    import yaml

    from tests.conftest import run_cli

    exp = tmp_path / "exp"
    (exp / "best").mkdir(parents=True)
    searched = yaml.safe_load((spk_run[0] / "config.yaml").read_text())
    searched["head"]["margin"] = 0.27  # what the search found
    (exp / "best" / "config.yaml").write_text(yaml.safe_dump(searched))
    (exp / "best" / "metrics.json").write_text(json.dumps({"objective": "eer", "best": {}, "history": []}))
    result = run_cli("train", "best", exp, "--out", tmp_path / "final", "--epochs", "2", "--workers", "0")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "[train best] spk" in result.stdout
    final = yaml.safe_load((tmp_path / "final" / "config.yaml").read_text())
    assert final["head"]["margin"] == 0.27 and final["trainer"]["epochs"] == 2
    assert len(read_metrics(tmp_path / "final")) == 2
    refused = run_cli("train", "best", tmp_path / "final", "--out", tmp_path / "again")
    assert refused.returncode == 2 and "not a finished `dist-spk tune` experiment" in refused.stderr
    assert not (tmp_path / "again").exists()


def test_noise_and_reverb_are_applied_to_each_training_batch_in_the_training_step(small_corpus, tmp_path, monkeypatch):
    from dist_spk.speaker.augment import CropAugment

    calls = []
    augment = CropAugment.__call__

    def recorded(self, waves, rng=None):
        out = augment(self, waves, rng)
        calls.append((rng is None, waves.dtype, waves.shape, not torch.equal(out, waves)))
        return out

    monkeypatch.setattr(CropAugment, "__call__", recorded)
    config = local_config("spk", small_corpus / "spk", **{
        "trainer.epochs": 1, "data.crops_per_epoch": 96, "data.batch_size": 32, "data.noise_probability": 1.0,
        "data.reverb_probability": 1.0, "data.noise_dir": small_corpus / "noise"})
    run_training("spk", config, out=tmp_path / "run")
    # three batches, each augmented once, by the module (the loader passes its own generator), as float, every crop
    assert calls == [(True, torch.float32, (32, 24000), True)] * 3


def test_an_empty_noise_folder_is_refused_before_the_run_starts(small_corpus, tmp_path):
    from tests.conftest import run_cli

    (tmp_path / "noise").mkdir()
    result = run_cli("train", "spk", "--data", small_corpus / "spk", "--out", tmp_path / "run", "--workers", "0",
                     "--set", f"data.noise_dir={tmp_path / 'noise'}", "--set", "data.noise_probability=0.5")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"data.noise_dir: no audio files in {tmp_path / 'noise'}" in result.stderr
    assert not (tmp_path / "run").exists()
