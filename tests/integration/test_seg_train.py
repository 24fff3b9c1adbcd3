"""Segmentation fine-tuning end to end on the synthetic corpus (plain Lightning, no Ray)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from dist_spk.config import load_config
from dist_spk.errors import DataError, DistSpkError
from dist_spk.launch.run import run_training
from dist_spk.runs.run_dir import read_metrics
from dist_spk.runs.startup import STAGES
from dist_spk.segmentation.task import SEG_METRICS
from tests.conftest import local_config

pytestmark = pytest.mark.slow


def seg_config(corpus, **sets):
    return local_config("seg", corpus / "diar", **sets)


def test_two_epochs_lower_der_and_log_every_seed_metric(seg_run):
    out, summary = seg_run
    rows = read_metrics(out)
    assert [row["epoch"] for row in rows] == [0, 1]
    for row in rows:
        for name in (*SEG_METRICS, "loss/train", "loss/train/segmentation", "loss/train/vad", "lr"):
            assert name in row, name
        assert row["loss/val"] == pytest.approx(row["loss/val/segmentation"] + row["loss/val/vad"], rel=1e-4)
        assert 0.0 <= row["DiarizationErrorRate/Threshold"] <= 1.0
    assert rows[-1]["DiarizationErrorRate"] < rows[0]["DiarizationErrorRate"]
    # start-up (imports, data, model, trainer) is reported once, with the first epoch; wall_time stamps each epoch
    assert rows[0]["startup_seconds"] > 0 and "startup_seconds" not in rows[1]
    stages = json.loads((out / "startup.json").read_text())
    assert stages["total"] == rows[0]["startup_seconds"]
    assert sum(stages[stage] for stage in STAGES) == pytest.approx(stages["total"], abs=0.05)
    assert rows[0]["wall_time"] < rows[1]["wall_time"]
    assert (out / "config.yaml").is_file() and (out / "checkpoints" / "last.ckpt").is_file()
    assert (out / "checkpoints" / "best.ckpt").is_file()
    assert summary["best_epoch"] == min(rows, key=lambda r: r["DiarizationErrorRate"])["epoch"]


def test_resume_continues_the_epoch_count(seg_run, small_corpus, tmp_path):
    out = tmp_path / "resumed"
    shutil.copytree(seg_run[0], out)
    with pytest.raises(DistSpkError, match="already holds a run"):
        run_training("seg", seg_config(small_corpus, **{"trainer.epochs": 3}), out=out)
    run_training("seg", seg_config(small_corpus, **{"trainer.epochs": 3}), out=out, resume=True)
    rows = read_metrics(out)
    assert [row["epoch"] for row in rows] == [0, 1, 2]
    assert rows[:2] == read_metrics(seg_run[0])  # the first two epochs are kept, not retrained
    assert rows[2]["step"] > rows[1]["step"]


def test_fine_tune_from_a_local_checkpoint_with_seed_variant(seg_run, small_corpus, tmp_path):
    # NAdam + cosine, bce+dice, augmentation, Lookahead, a frozen SincNet: the seed variants are configs
    config = seg_config(small_corpus, **{
        "trainer.epochs": 1, "trainer.limit_train_batches": 2, "model.init": seg_run[0] / "checkpoints/best.ckpt",
        "optim.name": "nadam", "optim.lookahead": "true", "lr_schedule.name": "cosine", "loss.name": "bce+dice",
        "augment.probability": 0.5, "augment.background_noise_dir": small_corpus / "noise",
        "model.freeze_sincnet_epochs": 1})
    run_training("seg", config, out=tmp_path / "ft")
    (row,) = read_metrics(tmp_path / "ft")
    assert row["DiarizationErrorRate"] < 0.9


def test_chunks_per_epoch_sets_the_steps_between_validations(small_corpus, tmp_path):
    run_training("seg", seg_config(small_corpus, **{"trainer.epochs": 2, "data.chunks_per_epoch": 40,
                                                    "data.batch_size": 16, "trainer.limit_val_batches": 1}),
                 out=tmp_path / "run")
    assert [row["step"] for row in read_metrics(tmp_path / "run")] == [2, 4]  # 40 // 16: pyannote drops the last


def test_evaluate_on_the_test_split(seg_run, small_corpus):
    from dist_spk.segmentation.evaluate import evaluate_segmentation

    metrics = evaluate_segmentation(seg_run[0], small_corpus / "diar", split="test")
    assert list(metrics) == list(SEG_METRICS)
    assert 0.0 < metrics["DiarizationErrorRate"] < 1.0


def test_bad_dataset_is_refused_before_anything_is_written(seed_dataset, tmp_path):
    (seed_dataset / "train/rttm/a1.rttm").write_text("SPEAKER a1 1 0.0 -1 <NA> <NA> x <NA> <NA>\n")
    config = load_config("seg", overrides=[f"data.root={seed_dataset}", "trainer.workers=0"])
    with pytest.raises(DataError, match=r"train/rttm/a1\.rttm:1: error: duration must be > 0"):
        run_training("seg", config, out=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_sincnet_stays_frozen(tiny_corpus, tmp_path):
    import lightning

    from dist_spk.data.protocol import load_protocol
    from dist_spk.segmentation.model import FreezeSincNet, build_model
    from dist_spk.train.seg_loop import build_task

    config = seg_config(tiny_corpus, **{"data.batch_size": 4})
    task = build_task(config, load_protocol(tiny_corpus / "diar"), cache=tmp_path / "cache")
    model = build_model(config.model, task)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer = lightning.Trainer(max_epochs=1, limit_train_batches=2, limit_val_batches=1, logger=False,
                                enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu",
                                callbacks=[FreezeSincNet(1)])
    trainer.fit(model)
    after = dict(model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before if n.startswith("sincnet."))
    assert any(not torch.equal(before[n], after[n]) for n in before if n.startswith("lstm."))


def test_checkpoint_errors_are_clear(tmp_path, monkeypatch):
    from dist_spk.segmentation.model import load_pretrained

    corrupt = tmp_path / "broken.ckpt"
    corrupt.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(DistSpkError, match=r"broken\.ckpt: not a readable checkpoint"):
        load_pretrained(str(corrupt))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # no hub here: the real download path fails fast
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(DistSpkError, match=r"cannot load 'pyannote/segmentation-3\.0' from the model hub.*HF_TOKEN"):
        load_pretrained("pyannote/segmentation-3.0")
