"""Segmentation losses on pyannote's powerset output (pure torch, no pyannote import).

PyanNet (segmentation-3.0) predicts, per frame, log-probabilities over the *powerset* classes: the
empty set, each speaker alone, and each pair of speakers. Its multi-label (per-speaker) view is
``P(speaker k active) = sum of the probabilities of the classes containing k`` (a matrix product
with the powerset mapping). The seed team's 3.x-era losses (bce, dice, Tversky) apply to that view:

- ``bce``: binary cross-entropy per frame and speaker;
- ``dice``: ``1 - (2 TP + eps) / (2 TP + FP + FN + eps)`` with soft counts over the batch;
- ``tversky``: ``1 - (TP + eps) / (TP + alpha FP + beta FN + eps)``: dice when alpha = beta = 0.5;
- ``vad``: binary cross-entropy of speech (``1 - P(empty set)``) against "any speaker active".

Shapes: ``probs``/``target`` are (batch, frames, speakers); ``log_probs`` is (batch, frames, classes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from dist_spk.config.tasks import SegLossConfig
from dist_spk.errors import ConfigError

EPS = 1.0  # smoothing of the dice/Tversky ratios (in frames): keeps empty chunks finite


def _weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    # values: (batch, frames, k); weight: (batch, frames, 1) or None
    if weight is None:
        return values.mean()
    weight = weight.expand_as(values)
    return (values * weight).sum() / weight.sum().clamp_min(1e-8)


def binary_cross_entropy(probs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
                         ) -> torch.Tensor:
    """Mean binary cross-entropy between per-speaker probabilities and 0/1 targets."""
    losses = F.binary_cross_entropy(probs.clamp(1e-7, 1 - 1e-7), target.float(), reduction="none")
    return _weighted_mean(losses, weight)


def tversky_loss(probs: torch.Tensor, target: torch.Tensor, *, alpha: float, beta: float, eps: float = EPS
                 ) -> torch.Tensor:
    """``1 - TP / (TP + alpha FP + beta FN)`` with soft counts summed over the whole batch."""
    target = target.float()
    tp = (probs * target).sum()
    fp = (probs * (1 - target)).sum()
    fn = ((1 - probs) * target).sum()
    return 1 - (tp + eps) / (tp + alpha * fp + beta * fn + eps)


def dice_loss(probs: torch.Tensor, target: torch.Tensor, *, eps: float = EPS) -> torch.Tensor:
    """Soft dice loss, ``1 - 2TP / (2TP + FP + FN)``: Tversky with alpha = beta = 0.5."""
    return tversky_loss(probs, target, alpha=0.5, beta=0.5, eps=eps)


def vad_loss(log_probs: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Voice-activity BCE: speech = 1 - P(powerset class 0, the empty set) vs any speaker active."""
    speech = 1 - log_probs[..., :1].exp()  # (batch, frames, 1)
    active = target.amax(dim=-1, keepdim=True)  # (batch, frames, 1)
    return binary_cross_entropy(speech, active, weight)


def powerset_cross_entropy(log_probs: torch.Tensor, target_powerset: torch.Tensor,
                           weight: torch.Tensor | None = None) -> torch.Tensor:
    """pyannote's default: negative log-likelihood of the target powerset class."""
    # log_probs: (batch, frames, classes); target_powerset: (batch, frames, classes) one-hot
    losses = F.nll_loss(log_probs.transpose(1, 2), target_powerset.argmax(dim=-1), reduction="none")
    return _weighted_mean(losses.unsqueeze(-1), weight)


@dataclass
class LossInputs:
    """What every segmentation loss may need, computed once per batch by the task."""

    log_probs: torch.Tensor  # (batch, frames, classes) powerset log-probabilities
    probs: torch.Tensor  # (batch, frames, speakers) multi-label view of the same
    target: torch.Tensor  # (batch, frames, speakers) 0/1, permuted to match the prediction
    target_powerset: torch.Tensor  # (batch, frames, classes) one-hot powerset view of the target
    weight: torch.Tensor | None = None  # (batch, frames, 1)


def _bce(x: LossInputs) -> torch.Tensor:
    return binary_cross_entropy(x.probs, x.target, x.weight)


SEGMENTATION_LOSSES: dict[str, Callable[[LossInputs, SegLossConfig], torch.Tensor]] = {
    "powerset_ce": lambda x, c: powerset_cross_entropy(x.log_probs, x.target_powerset, x.weight),
    "bce": lambda x, c: _bce(x),
    "bce+dice": lambda x, c: _bce(x) + c.dice_weight * dice_loss(x.probs, x.target),
    "bce+tversky": lambda x, c: _bce(x) + c.dice_weight * tversky_loss(
        x.probs, x.target, alpha=c.tversky_alpha, beta=c.tversky_beta),
}


def segmentation_loss(inputs: LossInputs, config: SegLossConfig) -> torch.Tensor:
    """The segmentation loss ``config.name`` selects."""
    if config.name not in SEGMENTATION_LOSSES:
        raise ConfigError(f"unknown segmentation loss {config.name!r}; valid: {', '.join(SEGMENTATION_LOSSES)}")
    return SEGMENTATION_LOSSES[config.name](inputs, config)
