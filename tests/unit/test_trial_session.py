"""A trial trained in its Tune trial's own process keeps checkpoints as a Ray Train run does (train/session.py)."""

from __future__ import annotations

import json

import pytest

from dist_spk.runs.run_dir import best_checkpoint, last_checkpoint, read_pointer, resolve_checkpoint
from dist_spk.train.session import TrialSession, TrialStopped


def test_each_epoch_is_one_checkpoint_last_and_best_point_at_it_and_the_rest_are_deleted(tmp_path):
    run, root = tmp_path / "trials" / "t_00000", tmp_path / "train" / "train-t_00000-0"
    (run / "checkpoints").mkdir(parents=True)
    reported = []
    session = TrialSession(run_dir=run, resume_from=None, trial_id="t_00000", checkpoints_root=root,
                           objective="eer", report_to=lambda metrics, folder: reported.append((metrics, folder)),
                           should_stop=lambda: False)
    for epoch, eer in enumerate([0.30, 0.20, 0.25, 0.20]):
        checkpoint = session.checkpoint_path(epoch)
        checkpoint.write_text(f"weights of epoch {epoch}")
        session.report({"epoch": epoch, "eer": eer}, checkpoint)
    # epoch 3 ties the best (epoch 1): best moves to it, as Ray Train keeps the later of equal scores
    assert sorted(p.name for p in root.iterdir()) == ["checkpoint_000003"]
    assert last_checkpoint(run).read_text() == best_checkpoint(run).read_text() == "weights of epoch 3"
    assert read_pointer(str(run), "best")["eer"] == 0.20 and read_pointer(str(run), "best")["epoch"] == 3
    assert [folder.name for _, folder in reported] == [f"checkpoint_{epoch:06d}" for epoch in range(4)]
    assert resolve_checkpoint(run)[0].read_text() == "weights of epoch 3"
    # while the best is older than the last, both stay
    checkpoint = session.checkpoint_path(4)
    checkpoint.write_text("weights of epoch 4")
    session.report({"epoch": 4, "eer": 0.5}, checkpoint)
    assert sorted(p.name for p in root.iterdir()) == ["checkpoint_000003", "checkpoint_000004"]
    assert json.loads((run / "checkpoints" / "last.json").read_text())["epoch"] == 4


def test_a_restarted_trial_keeps_its_earlier_best(tmp_path):
    run = tmp_path / "trials" / "t"
    (run / "checkpoints").mkdir(parents=True)
    first = TrialSession(run_dir=run, resume_from=None, trial_id="t", checkpoints_root=tmp_path / "train" / "a",
                         objective="eer", report_to=lambda *_: None, should_stop=lambda: False)
    checkpoint = first.checkpoint_path(0)
    checkpoint.write_text("a0")
    first.report({"epoch": 0, "eer": 0.1}, checkpoint)
    second = TrialSession(run_dir=run, resume_from=str(last_checkpoint(run)), trial_id="t",
                          checkpoints_root=tmp_path / "train" / "b", objective="eer", report_to=lambda *_: None,
                          should_stop=lambda: False)
    assert second.latest_checkpoint() == last_checkpoint(run)
    checkpoint = second.checkpoint_path(1)
    checkpoint.write_text("b1")
    second.report({"epoch": 1, "eer": 0.3}, checkpoint)
    assert best_checkpoint(run).read_text() == "a0" and last_checkpoint(run).read_text() == "b1"


def test_a_stop_request_ends_training_after_the_current_step(tmp_path):
    import lightning
    import torch

    asked = {"stop": False}

    class Model(lightning.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)
            self.steps = 0

        def training_step(self, batch, batch_idx):
            self.steps += 1
            asked["stop"] = self.steps == 3
            return self.layer(batch).sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    session = TrialSession(run_dir=tmp_path, resume_from=None, trial_id="t", checkpoints_root=tmp_path / "train",
                           objective="eer", report_to=lambda *_: None, should_stop=lambda: asked["stop"])
    trainer = session.prepare(lightning.Trainer(max_epochs=5, logger=False, enable_checkpointing=False,
                                                enable_progress_bar=False, enable_model_summary=False))
    model = Model()
    with pytest.raises(TrialStopped):
        trainer.fit(model, torch.utils.data.DataLoader(torch.randn(64, 2), batch_size=4))
    assert model.steps == 3
