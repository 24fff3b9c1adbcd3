"""Optimizer and learning-rate scheduler registries, shared by both tasks.

Optimizers: Adam, AdamW, RAdam, NAdam, SGD, each optionally wrapped in Lookahead (pytorch-optimizer).
Schedulers, stepped once per epoch: none, cosine annealing, cosine with warm restarts and
reduce-on-plateau, after an optional linear warm-up.
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from typing import Any

import torch
from pytorch_optimizer import Lookahead
from torch.optim import lr_scheduler

from dist_spk.config.tasks import LrScheduleConfig, OptimConfig
from dist_spk.errors import ConfigError

OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "radam": torch.optim.RAdam,
    "nadam": torch.optim.NAdam,
    "sgd": torch.optim.SGD,
}


def _lookup(registry: dict[str, Any], name: str, what: str) -> Any:
    if name not in registry:
        raise ConfigError(f"unknown {what} {name!r}; valid: {', '.join(registry)}")
    return registry[name]


def build_optimizer(parameters: Iterable[torch.nn.Parameter], config: OptimConfig) -> torch.optim.Optimizer:
    """The optimizer ``config`` names, wrapped in Lookahead when ``config.lookahead``."""
    kwargs: dict[str, Any] = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.name == "sgd":
        kwargs["momentum"] = config.momentum
    optimizer = _lookup(OPTIMIZERS, config.name, "optimizer")(parameters, **kwargs)
    if config.lookahead:
        optimizer = Lookahead(optimizer, k=config.lookahead_k, alpha=config.lookahead_alpha)
    return optimizer


def _cosine(optimizer, config: LrScheduleConfig, epochs: int):
    # the last epoch trains at min_lr
    return lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs - config.warmup_epochs - 1),
                                          eta_min=config.min_lr)


def _cosine_restarts(optimizer, config: LrScheduleConfig, epochs: int):
    return lr_scheduler.CosineAnnealingWarmRestarts(optimizer, T_0=config.restart_epochs, eta_min=config.min_lr)


def _plateau(optimizer, config: LrScheduleConfig, epochs: int):
    return lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", patience=config.plateau_patience,
                                          factor=config.plateau_factor, min_lr=config.min_lr)


def _constant(optimizer, config: LrScheduleConfig, epochs: int):
    return lr_scheduler.LambdaLR(optimizer, lambda epoch: 1.0)


SCHEDULERS = {"none": _constant, "cosine": _cosine, "cosine_restarts": _cosine_restarts, "plateau": _plateau}


def build_scheduler(optimizer: torch.optim.Optimizer, config: LrScheduleConfig, *, epochs: int, monitor: str
                    ) -> dict[str, Any]:
    """A Lightning ``lr_scheduler`` config dict, stepped every epoch.

    Parameters
    ----------
    optimizer
        What the schedule drives.
    config
        Which schedule, and its warm-up.
    epochs
        The run's length (cosine annealing reaches ``min_lr`` at its end).
    monitor
        The validation metric reduce-on-plateau watches (lower is better).
    """
    main = _lookup(SCHEDULERS, config.name, "scheduler")(optimizer, config, epochs)
    if config.warmup_epochs > 0:
        warmup = lr_scheduler.LinearLR(optimizer, start_factor=1.0 / (config.warmup_epochs + 1), end_factor=1.0,
                                       total_iters=config.warmup_epochs)
        main = lr_scheduler.SequentialLR(optimizer, [warmup, main], milestones=[config.warmup_epochs])
    return {"scheduler": main, "interval": "epoch", "frequency": 1, "monitor": monitor}


def attach_optimizers(module, optim: OptimConfig, scheduler: LrScheduleConfig, *, epochs: int, monitor: str) -> None:
    """Give a LightningModule our optimizer and schedule.

    pyannote models hard-code Adam in ``configure_optimizers``; binding a replacement method on the
    instance is how pyannote's own fine-tuning tutorial changes it, and works for loaded checkpoints
    whatever their class.
    """

    def configure_optimizers(self):
        optimizer = build_optimizer(self.parameters(), optim)
        return {"optimizer": optimizer,
                "lr_scheduler": build_scheduler(optimizer, scheduler, epochs=epochs, monitor=monitor)}

    module.configure_optimizers = types.MethodType(configure_optimizers, module)
