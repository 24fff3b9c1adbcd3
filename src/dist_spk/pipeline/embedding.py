"""Our speaker encoder as the embedding model of pyannote.audio's diarization pipeline.

pyannote's ``SpeakerDiarization`` accepts any ``pyannote.audio.Model`` as ``embedding`` and calls it
as ``model(waveforms, weights=masks)``: (chunks, 1, samples) plus each chunk's per-frame activity of
one speaker. Our encoder pools over a length, not weights, so the active samples are gathered into
one contiguous signal, as pyannote's own SpeechBrain adapter does; the Conformer is exact under
padding, so a speaker's embedding does not depend on what else is in the batch.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import torch
import torch.nn.functional as F
from pyannote.audio import Model
from torch.nn.utils.rnn import pad_sequence

from dist_spk.speaker.encoder import SpeakerEncoder

SAMPLE_RATE = 16000
MIN_SECONDS = 0.3  # shorter active speech gives a NaN embedding, which pyannote's clustering skips


class SpeakerEncoderModel(Model):
    """A pyannote ``Model`` around a trained :class:`~dist_spk.speaker.encoder.SpeakerEncoder`."""

    def __init__(self, encoder: SpeakerEncoder, emb_size: int):
        super().__init__(sample_rate=SAMPLE_RATE, num_channels=1)
        self.encoder = encoder
        self.emb_size = emb_size

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path) -> SpeakerEncoderModel:
        """From a speaker-encoder checkpoint file or run directory (``dist-spk train spk``)."""
        from dist_spk.speaker.inference import load_speaker_module

        module = load_speaker_module(checkpoint)
        return cls(module.encoder, module.config.model.emb_size).eval()

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
