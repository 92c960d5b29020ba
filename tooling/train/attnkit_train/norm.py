"""RMSNorm (spec §0): y = x / sqrt(mean(x²) + eps) ⊙ w, computed in float32."""

import torch
from torch import nn

from .numerics import wide


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = wide(x)
        y = xf * torch.rsqrt(xf.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (y * wide(self.weight)).to(x.dtype)
