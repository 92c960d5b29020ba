"""Accumulation precision: float32 at least (the reference computes softmax/norms in float32),
float64 kept as is so a float64 copy of a model is an exact-arithmetic reference."""

import torch


def wide(x: torch.Tensor) -> torch.Tensor:
    return x if x.dtype == torch.float64 else x.float()
