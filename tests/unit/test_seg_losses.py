"""Segmentation losses on hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from dist_spk.config.tasks import SegLossConfig
from dist_spk.segmentation.losses import (
    SEGMENTATION_LOSSES,
    LossInputs,
    binary_cross_entropy,
    dice_loss,
    powerset_cross_entropy,
    segmentation_loss,
    tversky_loss,
    vad_loss,
)

# one chunk, two frames, two speakers
PROBS = torch.tensor([[[0.8, 0.1], [0.4, 0.5]]])
TARGET = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
# soft counts: TP = 0.8 + 0.4 + 0.5 = 1.7; FP = 0.1; FN = 0.2 + 0.6 + 0.5 = 1.3


def test_bce_by_hand():
    expected = -(math.log(0.8) + math.log(0.9) + math.log(0.4) + math.log(0.5)) / 4
    assert binary_cross_entropy(PROBS, TARGET).item() == pytest.approx(expected, rel=1e-6)
    # a zero weight on the second frame leaves the first frame's mean
    weight = torch.tensor([[[1.0], [0.0]]])
    first = -(math.log(0.8) + math.log(0.9)) / 2
    assert binary_cross_entropy(PROBS, TARGET, weight).item() == pytest.approx(first, rel=1e-6)


def test_dice_and_tversky_by_hand():
    tp, fp, fn = 1.7, 0.1, 1.3
    assert dice_loss(PROBS, TARGET, eps=0).item() == pytest.approx(1 - 2 * tp / (2 * tp + fp + fn), rel=1e-6)
    assert tversky_loss(PROBS, TARGET, alpha=0.3, beta=0.7, eps=0).item() == pytest.approx(
        1 - tp / (tp + 0.3 * fp + 0.7 * fn), rel=1e-6)
    assert tversky_loss(PROBS, TARGET, alpha=0.5, beta=0.5).item() == pytest.approx(dice_loss(PROBS, TARGET).item())
    assert dice_loss(TARGET, TARGET).item() == pytest.approx(0.0, abs=1e-6)  # perfect prediction


def test_vad_loss_uses_the_empty_set_class():
    # powerset classes: {}, {1}, {2}, {1,2}; frame 1 is silent, frame 2 speech
    probs = torch.tensor([[[0.9, 0.05, 0.05, 0.0], [0.2, 0.3, 0.3, 0.2]]])
    target = torch.tensor([[[0.0, 0.0], [1.0, 0.0]]])
    expected = -(math.log(1 - 0.1) + math.log(0.8)) / 2  # speech prob = 1 - P({})
    assert vad_loss(probs.clamp_min(1e-12).log(), target).item() == pytest.approx(expected, rel=1e-5)


def test_powerset_cross_entropy_is_nll_of_the_target_class():
    log_probs = torch.tensor([[[0.7, 0.1, 0.1, 0.1], [0.1, 0.1, 0.2, 0.6]]]).log()
    target = torch.tensor([[[1.0, 0, 0, 0], [0, 0, 0, 1.0]]])
    expected = -(math.log(0.7) + math.log(0.6)) / 2
    assert powerset_cross_entropy(log_probs, target).item() == pytest.approx(expected, rel=1e-6)


def test_the_registry_selects_by_config_name():
    inputs = LossInputs(log_probs=torch.zeros(1, 2, 4).log_softmax(-1), probs=PROBS, target=TARGET,
                        target_powerset=torch.tensor([[[0, 1.0, 0, 0], [0, 0, 0, 1.0]]]))
    bce = binary_cross_entropy(PROBS, TARGET).item()
    values = {name: segmentation_loss(inputs, SegLossConfig(name=name, dice_weight=2.0)).item()
              for name in SEGMENTATION_LOSSES}
    assert values["powerset_ce"] == pytest.approx(math.log(4))
    assert values["bce"] == pytest.approx(bce)
    assert values["bce+dice"] == pytest.approx(bce + 2 * dice_loss(PROBS, TARGET).item())
    assert values["bce+tversky"] == pytest.approx(bce + 2 * tversky_loss(PROBS, TARGET, alpha=0.3, beta=0.7).item())


def test_losses_have_gradients():
    probs = PROBS.clone().requires_grad_()
    (binary_cross_entropy(probs, TARGET) + tversky_loss(probs, TARGET, alpha=0.3, beta=0.7)).backward()
    assert probs.grad is not None and torch.isfinite(probs.grad).all()
