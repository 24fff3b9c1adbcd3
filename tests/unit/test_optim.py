"""Optimizer and scheduler registries."""

from __future__ import annotations

import typing

import pytest
import torch
from pytorch_optimizer import Lookahead

from dist_spk.config.tasks import LrScheduleConfig, OptimConfig
from dist_spk.optim import OPTIMIZERS, SCHEDULERS, build_optimizer, build_scheduler


def _params():
    return [torch.nn.Parameter(torch.ones(3))]


def test_registries_cover_every_config_name():
    hints = typing.get_type_hints(OptimConfig)
    assert set(typing.get_args(hints["name"])) == set(OPTIMIZERS)
    assert set(typing.get_args(typing.get_type_hints(LrScheduleConfig)["name"])) == set(SCHEDULERS)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_optimizer_builds_and_steps(name):
    params = _params()
    optimizer = build_optimizer(params, OptimConfig(name=name, lr=0.1, weight_decay=0.01))
    assert isinstance(optimizer, OPTIMIZERS[name])
    (params[0] ** 2).sum().backward()
    optimizer.step()
    assert torch.all(params[0] < 1.0)


def test_lookahead_wraps_any_optimizer_and_pulls_back():
    params = _params()
    optimizer = build_optimizer(params, OptimConfig(name="nadam", lr=0.1, lookahead=True, lookahead_k=2,
                                                    lookahead_alpha=0.5))
    assert isinstance(optimizer, Lookahead) and isinstance(optimizer, torch.optim.Optimizer)
    for _ in range(2):
        optimizer.zero_grad()
        (params[0] ** 2).sum().backward()
        optimizer.step()
    assert "lookahead_state" in optimizer.state_dict()


def _lrs(config: LrScheduleConfig, epochs: int, lr: float = 1.0) -> list[float]:
    optimizer = torch.optim.SGD(_params(), lr=lr)
    scheduler = build_scheduler(optimizer, config, epochs=epochs, monitor="loss/val")["scheduler"]
    values = []
    for _ in range(epochs):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def test_cosine_reaches_min_lr_at_the_end():
    lrs = _lrs(LrScheduleConfig(name="cosine", min_lr=0.1), epochs=11)
    assert lrs[0] == pytest.approx(1.0)
    assert lrs[5] == pytest.approx(0.55)  # half-way: (1 + 0.1) / 2
    assert lrs[-1] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(lrs, lrs[1:], strict=False))


def test_linear_warmup_then_cosine():
    lrs = _lrs(LrScheduleConfig(name="cosine", warmup_epochs=3), epochs=8)
    assert lrs[:4] == pytest.approx([0.25, 0.5, 0.75, 1.0])
    assert lrs[4] < 1.0


def test_warm_restarts_and_constant():
    lrs = _lrs(LrScheduleConfig(name="cosine_restarts", restart_epochs=3), epochs=7)
    assert lrs[0] == lrs[3] == lrs[6] == pytest.approx(1.0)
    assert _lrs(LrScheduleConfig(name="none"), epochs=4) == [1.0] * 4


def test_plateau_reduces_when_the_metric_stalls():
    optimizer = torch.optim.SGD(_params(), lr=1.0)
    entry = build_scheduler(optimizer, LrScheduleConfig(name="plateau", plateau_patience=1, plateau_factor=0.5),
                            epochs=10, monitor="loss/val")
    assert entry["monitor"] == "loss/val"
    for value in [1.0, 1.0, 1.0, 1.0]:
        entry["scheduler"].step(value)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)


@pytest.mark.parametrize("lookahead", [False, True])
def test_a_resumed_run_trains_with_its_own_lr_and_keeps_the_schedule(tmp_path, lookahead):
    """What PBT relies on: Lightning restores the checkpoint's lr; ApplyOptimSettings rescales it."""
    import lightning
    from lightning.pytorch.demos.boring_classes import BoringModel

    from dist_spk.optim import attach_optimizers
    from dist_spk.train.callbacks import ApplyOptimSettings

    schedule = LrScheduleConfig(name="cosine", warmup_epochs=1)
    seen: dict[str, float] = {}

    class Record(lightning.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            seen[f"{trainer.current_epoch}"] = trainer.optimizers[0].param_groups[0]["lr"]

    def fit(lr: float, epochs: int, resume: str | None = None):
        model = BoringModel()
        optim = OptimConfig(name="adamw", lr=lr, weight_decay=0.01 * lr, lookahead=lookahead)
        attach_optimizers(model, optim, schedule, epochs=6, monitor="train_loss")
        trainer = lightning.Trainer(max_epochs=epochs, limit_train_batches=2, limit_val_batches=1, logger=False,
                                    enable_checkpointing=False, enable_progress_bar=False,
                                    enable_model_summary=False, callbacks=[ApplyOptimSettings(optim), Record()])
        trainer.fit(model, ckpt_path=resume, weights_only=False)
        return trainer

    fit(0.1, 4)
    planned = dict(seen)  # the uninterrupted run's lr per epoch
    seen.clear()
    fit(0.1, 2).save_checkpoint(tmp_path / "two.ckpt")
    seen.clear()
    resumed = fit(0.01, 4, resume=str(tmp_path / "two.ckpt"))
    assert seen["2"] == pytest.approx(planned["2"] * 0.1)  # same point of the schedule, the new base lr
    assert seen["3"] == pytest.approx(planned["3"] * 0.1)
    group = resumed.optimizers[0].param_groups[0]
    assert group["weight_decay"] == pytest.approx(1e-4)
