"""Lightning glue for speaker-encoder training: the encoder and head know nothing about it.

Each epoch logs ``loss`` and ``accuracy`` (training, AAM logits), then on the held-out speakers'
utterances ``eer``, ``min_dcf`` (p_target 0.01), ``min_dcf_p05`` (0.05), ``ari`` and ``nmi``
(agglomerative clustering with the oracle speaker count), and the current ``margin``.
"""

from __future__ import annotations

import warnings

import lightning
import numpy as np
import torch
import torch.nn.functional as F

from dist_spk.config import config_from_dict
from dist_spk.config.registry import TASKS
from dist_spk.config.tasks import SpkConfig
from dist_spk.data.speakers import Utterance
from dist_spk.data.training_cache import to_float
from dist_spk.data.trials import Trial
from dist_spk.speaker.augment import CropAugment
from dist_spk.speaker.clustering import clustering_quality
from dist_spk.speaker.encoder import SpeakerEncoder
from dist_spk.speaker.head import MarginScheduler, build_head
from dist_spk.speaker.metrics import cosine_scores, eer, merge_shards, min_dcf

# Lightning advises sync_dist=True for epoch-level values under DDP (a warning per metric, every run);
# these are computed from the embeddings gathered from every rank (the margin from the step count),
# so every rank already has the same value
warnings.filterwarnings("ignore",
                        message=r"It is recommended to use `self.log\('(eer|min_dcf|min_dcf_p05|ari|nmi|fmi|margin)'")

SPK_METRICS = TASKS["spk"].metrics  # the task registry's (config/registry.py)
SPK_OBJECTIVE = TASKS["spk"].objective  # lower is better


class SpeakerModule(lightning.LightningModule):
    """Encoder + classification head; validation scores trials and clusters held-out speakers.

    Parameters
    ----------
    config
        The plain-dict SpkConfig (saved as a hyper-parameter, so checkpoints rebuild the model).
    num_classes
        Training classes (speakers, times speeds with speed perturbation).
    """

    def __init__(self, config: dict, num_classes: int):
        super().__init__()
        self.save_hyperparameters()
        self.config: SpkConfig = config_from_dict("spk", config)
        self.encoder = SpeakerEncoder(self.config.model, self.config.frontend)
        self.head = build_head(self.config.head, self.config.model.emb_size, num_classes)
        self.margins: MarginScheduler | None = None
        self.augment: CropAugment | None = None  # data.augment_on_device: noise and reverb on the training device
        self.eval_utterances: list[Utterance] = []
        self.trials: list[Trial] = []
        self._embedded: list[tuple[torch.Tensor, torch.Tensor]] = []

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.encoder(wave, lengths)

    def set_evaluation(self, utterances: list[Utterance], trials: list[Trial]) -> None:
        self.eval_utterances = utterances
        self.trials = trials

    def on_train_start(self) -> None:
        steps_per_epoch = max(1, self.trainer.num_training_batches)
        self.margins = MarginScheduler(self.head, final=self.config.head.margin,
                                       warmup_steps=self.config.head.margin_warmup_epochs * steps_per_epoch)
        if self.config.data.augment_on_device:
            augment = CropAugment(self.config.data, seed=self.config.trainer.seed + self.global_rank)
            self.augment = augment if augment.active else None

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        wave, labels = batch  # (B, N), (B,)
        wave = to_float(wave)  # a batch gathered from a training cache arrives as int16
        if self.augment is not None:
            wave = self.augment(wave)
        if self.margins is not None:
            self.margins.step(self.global_step)
        lengths = torch.full((wave.shape[0],), wave.shape[1], device=wave.device)
        logits = self.head(self.encoder(wave, lengths), labels)  # (B, classes)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(dim=-1) == labels).float().mean()
        self.log("loss", loss, on_step=False, on_epoch=True, sync_dist=True, prog_bar=True)
        self.log("accuracy", accuracy, on_step=False, on_epoch=True, sync_dist=True)
        self.log("margin", float(getattr(self.head, "margin", 0.0)), on_step=False, on_epoch=True)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._embedded = []

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        indices, wave, lengths = batch
        self._embedded.append((indices, self.encoder(wave, lengths).float()))

    def on_validation_epoch_end(self) -> None:
        if not self.eval_utterances:
            return
        local_indices = torch.cat([i for i, _ in self._embedded]) if self._embedded else torch.empty(0)
        local_embeddings = torch.cat([e for _, e in self._embedded])
        # every rank gathers every shard, so every rank computes (and logs) the same figures
        gathered_indices = self.all_gather(local_indices.to(self.device))
        gathered_embeddings = self.all_gather(local_embeddings)
        if gathered_indices.dim() == 1:  # a single process: no rank dimension
            gathered_indices, gathered_embeddings = gathered_indices[None], gathered_embeddings[None]
        embeddings = merge_shards([i.cpu().numpy() for i in gathered_indices],
                                  [e.cpu().numpy() for e in gathered_embeddings], len(self.eval_utterances))
        for name, value in verification_metrics(embeddings, self.eval_utterances, self.trials,
                                                clustering=self.config.eval.clustering).items():
            self.log(name, value, on_epoch=True, sync_dist=False)


def verification_metrics(embeddings: np.ndarray, utterances: list[Utterance], trials: list[Trial], *,
                         clustering: str = "agglomerative") -> dict[str, float]:
    """EER, minDCF at p_target 0.01 and 0.05, and the ``clustering`` method's ARI, NMI and FMI from embeddings of
    ``utterances``."""
    position = {u.key: i for i, u in enumerate(utterances)}
    enroll = embeddings[[position[t.enroll] for t in trials]]
    test = embeddings[[position[t.test] for t in trials]]
    scores = cosine_scores(enroll, test)
    labels = np.array([t.target for t in trials])
    metrics = {"eer": eer(scores, labels)[0], "min_dcf": min_dcf(scores, labels, p_target=0.01),
               "min_dcf_p05": min_dcf(scores, labels, p_target=0.05)}
    return metrics | clustering_quality(embeddings, [u.speaker for u in utterances], method=clustering)
