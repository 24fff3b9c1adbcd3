"""The Conformer block (Gulati et al. 2020), owned here: macaron feed-forward halves around self-attention and a
depthwise convolution module, with padding masked out of the convolution.

Written here rather than subclassing torchaudio's ``ConformerLayer``: the masked convolution needs the module's
inner layers, and unpacking torchaudio's private ``_ConvolutionModule.sequential`` would break silently on an
upgrade. The parameter names are torchaudio's (``ffn1.sequential.1.weight``, ``conv_module.sequential.2.weight``,
...), so checkpoints written with the torchaudio-based block load unchanged and give the same embeddings
(tests/integration/test_previous_layout.py, within 1e-5).
"""

from __future__ import annotations

import torch
from torch import nn


class FeedForward(nn.Module):
    """LayerNorm -> Linear -> SiLU -> Dropout -> Linear -> Dropout (the residual is added by the block)."""

    def __init__(self, dim: int, hidden: int, dropout: float):
        super().__init__()
        self.sequential = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.SiLU(), nn.Dropout(dropout),
                                        nn.Linear(hidden, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sequential(x)


class ConvolutionModule(nn.Module):
    """LayerNorm -> pointwise conv (2x) -> GLU -> [padding zeroed] -> depthwise conv -> BatchNorm -> SiLU ->
    pointwise conv -> Dropout. One nn.Sequential (torchaudio's parameter names), run layer by layer."""

    def __init__(self, dim: int, kernel_size: int, dropout: float):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"the depthwise kernel size must be odd ('same' padding), got {kernel_size}")
        self.layer_norm = nn.LayerNorm(dim)
        self.sequential = nn.Sequential(
            nn.Conv1d(dim, 2 * dim, 1), nn.GLU(dim=1),
            nn.Conv1d(dim, dim, kernel_size, padding=(kernel_size - 1) // 2, groups=dim),
            nn.BatchNorm1d(dim), nn.SiLU(), nn.Conv1d(dim, dim, 1), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        # x: (T, B, D); pad: (B, T), True on padding -> (T, B, D), the residual not added
        pointwise, glu, depthwise, norm, activation, project, dropout = self.sequential
        y = self.layer_norm(x.transpose(0, 1)).transpose(1, 2)  # (B, D, T)
        y = glu(pointwise(y)).masked_fill(pad[:, None, :], 0.0)  # padding never reaches the depthwise conv
        y = dropout(project(activation(norm(depthwise(y)))))
        return y.permute(2, 0, 1)


class ConformerBlock(nn.Module):
    """x + FFN/2 -> + self-attention (padding masked) -> + convolution -> + FFN/2 -> LayerNorm; (T, B, D) in and out."""

    def __init__(self, dim: int, ffn_dim: int, num_heads: int, kernel_size: int, *, dropout: float = 0.0):
        super().__init__()
        self.ffn1 = FeedForward(dim, ffn_dim, dropout)
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, num_heads, dropout=dropout)
        self.self_attn_dropout = nn.Dropout(dropout)
        self.conv_module = ConvolutionModule(dim, kernel_size, dropout)
        self.ffn2 = FeedForward(dim, ffn_dim, dropout)
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, key_padding_mask: torch.Tensor) -> torch.Tensor:
        # x: (T, B, D); key_padding_mask: (B, T), True on padding
        x = x + 0.5 * self.ffn1(x)
        y = self.self_attn_layer_norm(x)
        y, _ = self.self_attn(query=y, key=y, value=y, key_padding_mask=key_padding_mask, need_weights=False)
        x = x + self.self_attn_dropout(y)
        x = x + self.conv_module(x, key_padding_mask)
        x = x + 0.5 * self.ffn2(x)
        return self.final_layer_norm(x)
