"""pyannote.audio 4's powerset ``SpeakerDiarization`` task, extended with the seed team's losses and metrics.

Logged every epoch (all chunk-level, on pyannote's fixed validation chunks of the dev split):

- ``loss/train/segmentation``, ``loss/train/vad``, ``loss/train``
- ``loss/val/segmentation``: the configured segmentation loss (powerset_ce, bce, bce+dice, bce+tversky);
- ``loss/val/vad``: BCE between speech probability ``1 - P(empty set)`` and "any speaker active";
- ``loss/val``: ``segmentation_weight * segmentation + vad_weight * vad`` (the training objective too);
- ``DiarizationErrorRate`` and ``/Confusion``, ``/FalseAlarm``, ``/Miss``: pyannote's permutation-
  invariant frame-level DER of the output *as the diarization pipeline decodes it*: pyannote 4's
  ``Inference`` turns a powerset output into speakers by its most likely class (argmax), so these
  rank trials by what the model will do downstream (the search's objective);
- ``DiarizationErrorRate/Marginal``: the same DER on the per-speaker marginal probabilities, at the
  best of 51 thresholds (0, 0.02, ..., 1), the 3.x-era decoding of multi-label models, and
  ``DiarizationErrorRate/Threshold`` that threshold. Reported beside the objective, never ranked on:
  a model trained on its marginals (bce, dice, Tversky) can threshold them well while its argmax,
  which the pipeline uses, labels every frame as overlapped speech;
- ``DiarizationErrorRate/OneSpeakerWholeChunk`` and ``/OneSpeakerOracleSpeech``: the trivial baselines on the
  same chunks, the pipeline's two at chunk scale: one speaker on every frame, and one speaker on every frame where
  anyone speaks (with the reference's own speech: an oracle voice-activity detector). A trial above the first has
  not learned; on short chunks, which mostly hold one speaker, the second is a strong bar (it knows the speech).

The seed team compared the 3.x names; 4.x itself logs the argmax DER at a fixed 0.5.
"""

from __future__ import annotations

import torch
from pyannote.audio.tasks import SpeakerDiarization
from pyannote.audio.torchmetrics.audio.diarization_error_rate import (
    DiarizationErrorRate,
    FalseAlarmRate,
    MissedDetectionRate,
    OptimalDiarizationErrorRate,
    OptimalDiarizationErrorRateThreshold,
    SpeakerConfusionRate,
)
from pyannote.audio.utils.permutation import permutate
from torchmetrics import MetricCollection

from dist_spk.config.registry import TASKS
from dist_spk.config.tasks import SegLossConfig
from dist_spk.data.training_cache import to_float
from dist_spk.segmentation.losses import LossInputs, segmentation_loss, vad_loss

# metric names reported every validation epoch, in display order
SEG_METRICS = TASKS["seg"].metrics
# the trivial baselines on the same chunks, named after the pipeline's (one_speaker_whole_file, ..._oracle_speech)
SEG_BASELINES = ("DiarizationErrorRate/OneSpeakerWholeChunk", "DiarizationErrorRate/OneSpeakerOracleSpeech")
SEG_OBJECTIVE = TASKS["seg"].objective  # lower is better


class SegmentationTask(SpeakerDiarization):
    """Powerset speaker diarization with selectable losses and the seed metric names.

    Parameters
    ----------
    protocol
        A pyannote.database speaker-diarization protocol.
    loss
        Which segmentation loss, and the weights of ``loss = w_seg * segmentation + w_vad * vad``.
    chunks_per_epoch
        Random training chunks per epoch; 0 keeps pyannote's (annotated training duration / chunk duration).
    **kwargs
        Passed on to :class:`pyannote.audio.tasks.SpeakerDiarization` (duration, batch_size, cache, ...).
    """

    def __init__(self, protocol, *, loss: SegLossConfig, chunks_per_epoch: int = 0, **kwargs):
        super().__init__(protocol, **kwargs)
        self.loss_config = loss
        self.chunks_per_epoch = chunks_per_epoch
        # None: augmentation off, or on the training batch on the device (train/callbacks.py::AugmentOnDevice)
        self.augment_in_loader = kwargs.get("augmentation") is not None

    def collate_X(self, batch) -> torch.Tensor:
        """pyannote's, except chunks of a training cache arrive as int16 (made float where the batch is used:
        ``training_cache.to_float``); a batch mixing them with decoded float chunks is made float here."""
        if len({b["X"].dtype for b in batch}) > 1:
            batch = [{**b, "X": to_float(b["X"])} for b in batch]
        return super().collate_X(batch)

    def collate_fn(self, batch, stage="train"):
        """pyannote's collation, without running its no-op ``Identity`` augmentation (two copies of every batch in
        the loader) when the augmentation is off or on the device."""
        X, y, meta = self.collate_X(batch), self.collate_y(batch), self.collate_meta(batch)
        if self.augment_in_loader and stage == "train":  # pyannote's way (augment.on_device false)
            self.augmentation.train(mode=True)
            augmented = self.augmentation(samples=to_float(X), sample_rate=self.model.hparams.sample_rate,
                                          targets=y.unsqueeze(1))
            X, y = augmented.samples, augmented.targets.squeeze(1)
        return {"X": X, "y": y, "meta": meta}

    def train__len__(self) -> int:
        # chunks are drawn at random (with replacement) whatever the epoch length: this only sets how many
        # optimizer steps pass between two validations
        return self.chunks_per_epoch or super().train__len__()

    def default_metric(self) -> dict:
        """The pipeline decoding's metrics (hard 0/1 speakers from the powerset argmax); the first is monitored."""
        return {
            "DiarizationErrorRate": DiarizationErrorRate(),
            "DiarizationErrorRate/Confusion": SpeakerConfusionRate(),
            "DiarizationErrorRate/FalseAlarm": FalseAlarmRate(),
            "DiarizationErrorRate/Miss": MissedDetectionRate(),
        }

    @staticmethod
    def marginal_metric() -> dict:
        """The marginal decoding's metrics: best-threshold DER on per-speaker probabilities, and the threshold."""
        return {
            "DiarizationErrorRate/Marginal": OptimalDiarizationErrorRate(),
            "DiarizationErrorRate/Threshold": OptimalDiarizationErrorRateThreshold(),
        }

    @staticmethod
    def baseline_metrics() -> dict:
        """The trivial baselines on the same chunks (see :data:`SEG_BASELINES`), one metric each."""
        return {name: DiarizationErrorRate() for name in SEG_BASELINES}

    def setup_validation_metric(self) -> None:
        super().setup_validation_metric()
        # module attributes, as pyannote's own validation_metric, so they follow the model's device;
        # torchmetrics states are not persistent: checkpoints are unchanged
        self.model.marginal_metric = MetricCollection(self.marginal_metric()).to(self.model.device)
        self.model.baseline_metrics = torch.nn.ModuleList(  # a module, so Lightning finds the metrics it logs
            [MetricCollection({name: metric}) for name, metric in self.baseline_metrics().items()]
        ).to(self.model.device)

    def _losses(self, batch: dict, target: torch.Tensor, waveform: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, LossInputs]:
        """Forward pass and losses: (segmentation, vad, total, what the losses were computed on)."""
        log_probs = self.model(waveform)  # (batch, frames, powerset classes)
        weight_key = getattr(self, "weight", None)  # pyannote's optional per-frame weight key
        weight = batch.get(weight_key) if weight_key else None  # (batch, frames, 1)
        probs = self.model.powerset.to_multilabel(log_probs, soft=True)  # (batch, frames, speakers)
        permuted, _ = permutate(probs, target)  # speakers reordered to match the prediction
        target_powerset = self.model.powerset.to_powerset(permuted.float())
        inputs = LossInputs(log_probs, probs, permuted, target_powerset, weight)
        seg = segmentation_loss(inputs, self.loss_config)
        vad = vad_loss(log_probs, permuted, weight)
        total = self.loss_config.segmentation_weight * seg + self.loss_config.vad_weight * vad
        return seg, vad, total, inputs

    def _log(self, stage: str, seg: torch.Tensor, vad: torch.Tensor, total: torch.Tensor) -> None:
        options = {"on_step": False, "on_epoch": True, "logger": True, "sync_dist": True}
        self.model.log(f"loss/{stage}/segmentation", seg, **options)
        self.model.log(f"loss/{stage}/vad", vad, **options)
        self.model.log(f"loss/{stage}", total, prog_bar=True, **options)

    def training_step(self, batch: dict, batch_idx: int):
        target = batch["y"]  # (batch, frames, speakers)
        waveform = to_float(batch["X"])  # (batch, channels, samples); int16 when read from a training cache
        # as pyannote does: drop chunks with more speakers than the model can output
        keep = torch.sum(torch.any(target, dim=1), dim=1) <= self.max_speakers_per_chunk
        if not keep.any():
            return None
        seg, vad, total, _ = self._losses(batch, target[keep], waveform[keep])
        self._log("train", seg, vad, total)
        return {"loss": total}

    def validation_step(self, batch: dict, batch_idx: int):
        target = batch["y"]
        seg, vad, total, inputs = self._losses(batch, target, to_float(batch["X"]))
        self._log("val", seg, vad, total)
        argmax = self.model.powerset.to_multilabel(inputs.log_probs)  # 0/1, what pyannote's Inference decodes
        whole_chunk, oracle_speech = one_speaker_baselines(target)
        # metrics take (batch, speakers, frames)
        for metric, preds in ((self.model.validation_metric, argmax), (self.model.marginal_metric, inputs.probs),
                              *zip(self.model.baseline_metrics, (whole_chunk, oracle_speech), strict=True)):
            metric(preds.transpose(1, 2), target.transpose(1, 2))
            self.model.log_dict(metric, on_step=False, on_epoch=True, prog_bar=False, logger=True)


def one_speaker_baselines(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch, frames, speakers) predictions of the trivial baselines: one speaker on every frame of the chunk,
    and one speaker on every frame where anyone speaks (the oracle speech). Float, as the decodings are."""
    whole = torch.zeros(target.shape, device=target.device)
    whole[..., 0] = 1.0
    oracle = torch.zeros(target.shape, device=target.device)
    oracle[..., 0] = target.any(dim=-1).float()
    return whole, oracle

