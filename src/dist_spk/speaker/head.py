"""Classification heads for speaker training: AAM-softmax (ArcFace) with optional sub-centers, and plain softmax.

AAM-softmax logits are ``scale * cos(theta_j)`` for every class j, except the target class whose angle
gets the additive margin: ``scale * cos(theta_y + margin)``. With K sub-centers per class, a class's
cosine is its best sub-center's. The margin is driven from outside through :meth:`set_margin`
(the :class:`MarginScheduler` warms it up from 0).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from dist_spk.config.tasks import HeadConfig
from dist_spk.errors import ConfigError


class AAMSoftmax(nn.Module):
    """Additive angular margin softmax; ``forward(emb, labels)`` returns logits for cross-entropy."""

    def __init__(self, emb_size: int, num_classes: int, *, margin: float, scale: float, subcenters: int = 1):
        super().__init__()
        self.num_classes = num_classes
        self.subcenters = subcenters
        self.scale = scale
        self.weight = nn.Parameter(torch.empty(num_classes * subcenters, emb_size))
        nn.init.xavier_uniform_(self.weight)
        self.set_margin(margin)

    def set_margin(self, margin: float) -> None:
        self.margin = float(margin)
        self._cos_m, self._sin_m = math.cos(margin), math.sin(margin)
        # beyond theta = pi - m, cos(theta + m) is no longer decreasing: fall back to a linear penalty
        self._threshold = math.cos(math.pi - margin)
        self._fallback = math.sin(math.pi - margin) * margin

    def cosine(self, emb: torch.Tensor) -> torch.Tensor:
        # emb: (B, E) -> (B, C), the best sub-center of each class
        cos = F.linear(F.normalize(emb), F.normalize(self.weight))  # (B, C*K)
        return cos.view(-1, self.num_classes, self.subcenters).amax(dim=-1)

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        cos = self.cosine(emb).clamp(-1 + 1e-7, 1 - 1e-7)
        sin = (1 - cos**2).sqrt()
        with_margin = cos * self._cos_m - sin * self._sin_m  # cos(theta + m)
        with_margin = torch.where(cos > self._threshold, with_margin, cos - self._fallback)
        target = F.one_hot(labels, self.num_classes).bool()
        return self.scale * torch.where(target, with_margin, cos)


class SoftmaxHead(nn.Module):
    """A linear classifier: the plain softmax baseline."""

    def __init__(self, emb_size: int, num_classes: int, **_: object):
        super().__init__()
        self.linear = nn.Linear(emb_size, num_classes)
        self.margin = 0.0

    def set_margin(self, margin: float) -> None:
        """No margin to set: keeps one interface with AAM-softmax."""

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.linear(emb)


HEADS: dict[str, type[nn.Module]] = {"aam": AAMSoftmax, "softmax": SoftmaxHead}


def build_head(config: HeadConfig, emb_size: int, num_classes: int) -> nn.Module:
    """The head ``config.type`` names; with a warm-up, the margin starts at 0."""
    if config.type not in HEADS:
        raise ConfigError(f"head.type: unknown head {config.type!r}; valid: {', '.join(HEADS)}")
    margin = 0.0 if config.margin_warmup_epochs else config.margin
    return HEADS[config.type](emb_size, num_classes, margin=margin, scale=config.scale,
                              subcenters=config.subcenters)


class MarginScheduler:
    """Linear margin warm-up from 0 to ``final`` over ``warmup_steps`` optimizer steps, then constant."""

    def __init__(self, head: nn.Module, *, final: float, warmup_steps: int):
        self.head = head
        self.final = final
        self.warmup_steps = warmup_steps

    def margin_at(self, step: int) -> float:
        if self.warmup_steps <= 0 or step >= self.warmup_steps:
            return self.final
        return self.final * step / self.warmup_steps

    def step(self, step: int) -> float:
        margin = self.margin_at(step)
        self.head.set_margin(margin)
        return margin
