"""Our speaker encoder as a pyannote.audio ``Model``: the embedding of pyannote's diarization pipeline, and a model
folder that ``Model.from_pretrained`` loads.

The wrapper is built from plain hyper-parameters (the encoder's ``model`` and ``frontend`` config sections), never
from a module object, so a checkpoint of it rebuilds itself: pyannote imports this class by the name its checkpoint
records (``dist_spk.pipeline.embedding.SpeakerEncoderModel``) and calls ``load_from_checkpoint``.

pyannote's ``SpeakerDiarization`` calls it as ``model(waveforms, weights=masks)``: (chunks, 1, samples) plus each
chunk's per-frame activity of one speaker. Our encoder pools over a length, not weights, so the active samples are
gathered into one contiguous signal, as pyannote's own SpeechBrain adapter does; the encoder is exact under padding,
so a speaker's embedding does not depend on what else is in the batch.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from pyannote.audio import Model
from pyannote.audio.core.task import Problem, Resolution, Specifications
from torch.nn.utils.rnn import pad_sequence

from dist_spk.config.tasks import FrontendConfig, SpkModelConfig
from dist_spk.config.typed import from_dict, to_dict
from dist_spk.speaker.encoder import SpeakerEncoder

SAMPLE_RATE = 16000
MIN_SECONDS = 0.3  # shorter active speech gives a NaN embedding, which pyannote's clustering skips
CHUNK_SECONDS = 5.0  # the specifications' nominal duration (pyannote's WeSpeaker conversion uses 5 s too)


class SpeakerEncoderModel(Model):
    """A pyannote ``Model`` around our :class:`~dist_spk.speaker.encoder.SpeakerEncoder`.

    Parameters
    ----------
    model
        The encoder's ``model`` config section (``SpkModelConfig`` as a dict: arch, sizes, emb_size).
    frontend
        Its ``frontend`` config section (``FrontendConfig`` as a dict: n_mels, ...).
    """

    def __init__(self, model: dict[str, Any] | None = None, frontend: dict[str, Any] | None = None,
                 sample_rate: int = SAMPLE_RATE, num_channels: int = 1, task=None):
        super().__init__(sample_rate=sample_rate, num_channels=num_channels, task=task)
        self.save_hyperparameters("model", "frontend", "sample_rate", "num_channels")
        model_config = from_dict(SpkModelConfig, model or {}, path="model", source="checkpoint")
        frontend_config = from_dict(FrontendConfig, frontend or {}, path="frontend", source="checkpoint")
        self.encoder = SpeakerEncoder(model_config, frontend_config)
        self.emb_size = model_config.emb_size
        self.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK,
                                             duration=CHUNK_SECONDS)

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path) -> SpeakerEncoderModel:
        """From a speaker-encoder checkpoint file, run directory or ``EXP/best`` (``dist-spk train spk``/``tune``)."""
        from dist_spk.speaker.inference import load_speaker_module

        module = load_speaker_module(checkpoint)
        model = cls(model=to_dict(module.config.model), frontend=to_dict(module.config.frontend))
        model.encoder.load_state_dict(module.encoder.state_dict())
        return model.eval()

    @cached_property
    def dimension(self) -> int:
        return self.emb_size

    @property
    def min_num_samples(self) -> int:
        return int(MIN_SECONDS * SAMPLE_RATE)

    def forward(self, waveforms: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
        # waveforms: (B, 1, N); weights: (B, F) frame activity of the speaker -> (B, emb_size)
        waves = waveforms[:, 0]
        batch, samples = waves.shape
        if weights is None:
            lengths = torch.full((batch,), samples, device=waves.device)
            return self.encoder(waves, lengths)
        active = F.interpolate(weights[:, None].float(), size=samples, mode="nearest")[:, 0] > 0.5  # (B, N)
        lengths = active.sum(dim=1)
        signals = pad_sequence([wave[keep] for wave, keep in zip(waves, active, strict=True)], batch_first=True)
        embeddings = torch.full((batch, self.emb_size), float("nan"), device=waves.device)
        usable = lengths >= self.min_num_samples
        if usable.any():
            embeddings[usable] = self.encoder(signals[usable], lengths[usable]).float()
        return embeddings
