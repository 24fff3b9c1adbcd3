"""Speaker encoders: an MFA-Conformer and speechbrain's ECAPA-TDNN baseline, behind one interface.

Both map a batch of 16 kHz waveforms with their lengths to one embedding per utterance:
``encoder(wave (B, N), lengths (B,) in samples) -> (B, emb_size)``. Padding never changes an
embedding: features, convolutions and attention are masked to each utterance's own length.

The Conformer's blocks (speaker/conformer.py: macaron FFN, self-attention, depthwise convolution, torchaudio's
``ConformerLayer`` parameter names) have no positional encodings: the convolutions carry relative position.
MFA-Conformer style, the outputs of every block are concatenated before attentive statistics pooling.
"""

from __future__ import annotations

import torch
import torchaudio
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN, AttentiveStatisticsPooling
from torch import nn

from dist_spk.config.tasks import FrontendConfig, SpkModelConfig
from dist_spk.errors import ConfigError
from dist_spk.speaker.conformer import ConformerBlock

SAMPLE_RATE = 16000
N_FFT, WIN, HOP = 512, 400, 160  # 25 ms windows every 10 ms, in 32 ms FFT frames


def frame_lengths(samples: torch.Tensor) -> torch.Tensor:
    """Frames of an unpadded (``center=False``) STFT for waveforms of ``samples`` samples."""
    return torch.clamp((samples - N_FFT) // HOP + 1, min=1)


def length_mask(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """(B, size) boolean, True on padding."""
    return torch.arange(size, device=lengths.device)[None, :] >= lengths[:, None]


def relative_lengths(lengths: torch.Tensor, size: int) -> torch.Tensor:
    """speechbrain's relative lengths, half a frame short: ``rel * size`` then masks exactly ``lengths`` frames.

    speechbrain masks ``arange(size) < rel * size``; float rounding of ``lengths / size * size`` can
    land a hair above ``lengths`` and let one padded frame in.
    """
    return (lengths.float() - 0.5) / size


class Fbank(nn.Module):
    """Log-mel filterbanks, mean-normalised over each utterance's valid frames; SpecAugment in training."""

    def __init__(self, config: FrontendConfig):
        super().__init__()
        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=N_FFT, win_length=WIN,
                                                        hop_length=HOP, n_mels=config.n_mels, center=False)
        self.specaugment = config.specaugment
        self.freq_mask = torchaudio.transforms.FrequencyMasking(config.freq_mask, iid_masks=True)
        self.time_mask = torchaudio.transforms.TimeMasking(config.time_mask, iid_masks=True)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # wave: (B, N) -> feats (B, T, n_mels), frames (B,)
        with torch.autocast(device_type=wave.device.type, enabled=False):
            feats = (self.mel(wave.float()) + 1e-6).log()  # (B, n_mels, T)
        frames = frame_lengths(lengths).clamp(max=feats.shape[-1])
        pad = length_mask(frames, feats.shape[-1])[:, None, :]  # (B, 1, T)
        mean = feats.masked_fill(pad, 0.0).sum(-1, keepdim=True) / frames[:, None, None]
        feats = (feats - mean).masked_fill(pad, 0.0)
        if self.training and self.specaugment:
            feats = self.time_mask(self.freq_mask(feats.unsqueeze(1))).squeeze(1)
        return feats.transpose(1, 2), frames


class ConformerEncoder(nn.Module):
    """Conv2d subsampling (time / 2) -> N Conformer blocks -> concat (MFA) -> attentive stats pooling -> embedding."""

    def __init__(self, config: SpkModelConfig, frontend: FrontendConfig):
        super().__init__()
        channels = max(32, config.d_model // 4)
        self.subsample = nn.ModuleList([
            nn.Conv2d(1, channels, 3, stride=(2, 2), padding=1),  # time / 2, mels / 2
            nn.Conv2d(channels, channels, 3, stride=(1, 2), padding=1),  # mels / 2
        ])
        mels = (frontend.n_mels + 1) // 2
        mels = (mels + 1) // 2
        self.project = nn.Linear(channels * mels, config.d_model)
        self.blocks = nn.ModuleList([
            ConformerBlock(config.d_model, config.ffn_dim, config.num_heads, config.kernel_size, dropout=config.dropout)
            for _ in range(config.num_blocks)
        ])
        width = config.d_model * config.num_blocks
        self.norm = nn.LayerNorm(width)
        self.pool = AttentiveStatisticsPooling(width, attention_channels=128, global_context=True)
        self.pool_norm = nn.BatchNorm1d(2 * width)
        self.embed = nn.Linear(2 * width, config.emb_size)
        self.embed_norm = nn.BatchNorm1d(config.emb_size)

    def forward(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        # feats: (B, T, F); frames: (B,)
        x = feats.unsqueeze(1)  # (B, 1, T, F)
        lengths = frames
        for index, conv in enumerate(self.subsample):
            x = torch.relu(conv(x))
            if index == 0:
                lengths = (lengths - 1) // 2 + 1
            x = x.masked_fill(length_mask(lengths, x.shape[2])[:, None, :, None], 0.0)  # keep padding silent
        batch, channels, time, mels = x.shape
        x = self.project(x.permute(0, 2, 1, 3).reshape(batch, time, channels * mels))  # (B, T', D)
        pad = length_mask(lengths, time)  # (B, T')
        x = x.transpose(0, 1)  # (T', B, D)
        outputs = []
        for block in self.blocks:
            x = block(x, pad)
            outputs.append(x)
        x = self.norm(torch.cat(outputs, dim=-1))  # (T', B, N*D)
        x = x.permute(1, 2, 0)  # (B, N*D, T')
        pooled = self.pool(x, lengths=relative_lengths(lengths, time)).squeeze(-1)  # (B, 2*N*D)
        return self.embed_norm(self.embed(self.pool_norm(pooled)))


class EcapaEncoder(nn.Module):
    """speechbrain's ECAPA-TDNN on the same features (channels scale with ``d_model``)."""

    def __init__(self, config: SpkModelConfig, frontend: FrontendConfig):
        super().__init__()
        width = max(64, 2 * config.d_model)
        self.ecapa = ECAPA_TDNN(frontend.n_mels, lin_neurons=config.emb_size,
                                channels=[width, width, width, width, 3 * width], attention_channels=64)

    def forward(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.ecapa(feats, lengths=relative_lengths(frames, feats.shape[1])).squeeze(1)


ENCODERS: dict[str, type[nn.Module]] = {"conformer": ConformerEncoder, "ecapa": EcapaEncoder}


class SpeakerEncoder(nn.Module):
    """Waveforms -> embeddings: filterbanks plus the encoder ``config.arch`` names."""

    def __init__(self, model: SpkModelConfig, frontend: FrontendConfig):
        super().__init__()
        if model.arch not in ENCODERS:
            raise ConfigError(f"model.arch: unknown encoder {model.arch!r}; valid: {', '.join(ENCODERS)}")
        self.frontend = Fbank(frontend)
        self.encoder = ENCODERS[model.arch](model, frontend)

    def forward(self, wave: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # wave: (B, N) at 16 kHz; lengths: (B,) samples -> (B, emb_size)
        feats, frames = self.frontend(wave, lengths)
        return self.encoder(feats, frames)
