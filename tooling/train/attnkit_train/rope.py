"""Rotary position embedding (spec §0): frequencies, optional DeepSeek YaRN, both pair layouts.

Angles are computed in float32 like DeepSeek's `precompute_freqs_cis` and Hugging Face's
rotary embeddings, so our tiny models see bit-for-bit the frequencies the TypeScript model uses.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import torch

from .numerics import wide


@dataclass(frozen=True)
class Yarn:
    """DeepSeek YaRN settings (spec §0). `mscale` scales the MLA softmax by mscale(s)² (spec §2)."""

    factor: float
    original_seq_len: int
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    mscale: float = 1.0

    def softmax_mscale(self) -> float:
        """(0.1·mscale·ln s + 1): the MLA softmax scale is multiplied by its square."""
        return 0.1 * self.mscale * math.log(self.factor) + 1.0 if self.factor > 1 else 1.0


def inv_freq(dim: int, theta: float = 10000.0, yarn: Optional[Yarn] = None) -> torch.Tensor:
    """f_i = θ^(−2i/dim), i = 0..dim/2−1, with YaRN interpolation when given. → [dim/2] float32."""
    if dim % 2 != 0:
        raise ValueError(f"[inv_freq] expected an even rotary width, got {dim}")
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    if yarn is None:
        return freqs

    def correction(rotations: float) -> float:
        # c(r) = dim · ln(L0 / (2π r)) / (2 ln θ): the pair index that turns r times over L0 tokens
        return dim * math.log(yarn.original_seq_len / (rotations * 2 * math.pi)) / (2 * math.log(theta))

    low = max(math.floor(correction(yarn.beta_fast)), 0)
    high = min(math.ceil(correction(yarn.beta_slow)), dim - 1)
    if low == high:
        high += 0.001
    ramp = ((torch.arange(dim // 2, dtype=torch.float32) - low) / (high - low)).clamp(0, 1)
    # pairs below `low` keep their frequency, pairs above `high` are divided by the factor
    return freqs / yarn.factor * ramp + freqs * (1 - ramp)


def cos_sin(freqs: torch.Tensor, positions: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Angles p·f_i in float32 → (cos, sin), each [S, dim/2]."""
    angles = torch.outer(positions.to(torch.float32), freqs)
    return angles.cos(), angles.sin()


def _broadcast(table: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    # table [S, R/2]; x [B, S, R] or [B, S, H, R] (token-major): put S at dim 1
    if x.dim() == 3:
        return table[None, :, :]
    return table[None, :, None, :]


def rope_interleaved(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotates pairs (2i, 2i+1) of the last axis (DeepSeek MLA's complex layout)."""
    c, s = _broadcast(cos, x), _broadcast(sin, x)
    pairs = wide(x).unflatten(-1, (-1, 2))  # [..., R/2, 2]
    a, b = pairs[..., 0], pairs[..., 1]
    return torch.stack((a * c - b * s, a * s + b * c), dim=-1).flatten(-2).to(x.dtype)


def rope_halfsplit(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotates pairs (i, i + R/2) of the last axis (GPT-NeoX `rotate_half` layout)."""
    c, s = _broadcast(cos, x), _broadcast(sin, x)
    a, b = wide(x).chunk(2, dim=-1)
    return torch.cat((a * c - b * s, a * s + b * c), dim=-1).to(x.dtype)


class RotaryTable(torch.nn.Module):
    """Holds f_i (not saved in checkpoints) and yields (cos, sin) [S, dim/2] for a position range."""

    def __init__(self, dim: int, theta: float = 10000.0, yarn: Optional[Yarn] = None):
        super().__init__()
        self.register_buffer("inv_freq", inv_freq(dim, theta, yarn), persistent=False)

    def forward(self, start: int, length: int) -> Tuple[torch.Tensor, torch.Tensor]:
        positions = torch.arange(start, start + length, device=self.inv_freq.device)
        return cos_sin(self.inv_freq, positions)
