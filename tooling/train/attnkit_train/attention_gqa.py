"""MHA / GQA / MQA self-attention with Llama's projections (spec §1, model_type "llama").

Half-split RoPE over the whole head_dim, scale D^−1/2, bottom-right causal, query head h reads kv
head ⌊h/G⌋. The cache is the rotated K and the V of every past token.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from .attention import attend_fast, causal_visibility
from .config import ModelConfig
from .rope import RotaryTable, rope_halfsplit

KVCache = Tuple[torch.Tensor, torch.Tensor]  # k [B, T, Hkv, D] rotated, v [B, T, Hkv, D]


class GroupedQueryAttention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        dim = cfg.hidden_size
        self.q_proj = nn.Linear(dim, self.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(dim, self.n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(dim, self.n_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, dim, bias=False)
        self.rotary = RotaryTable(self.head_dim, cfg.rope_theta)

    def project(self, x: torch.Tensor, past: Optional[KVCache]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """→ rotated q [B,S,H,D] and the whole (cache + new) rotated k, v [B,T,Hkv,D]."""
        B, S, _ = x.shape
        start = 0 if past is None else past[0].shape[1]
        cos, sin = self.rotary(start, S)
        q = rope_halfsplit(self.q_proj(x).view(B, S, self.n_heads, self.head_dim), cos, sin)  # [B, S, H, D]
        k = rope_halfsplit(self.k_proj(x).view(B, S, self.n_kv_heads, self.head_dim), cos, sin)  # [B, S, Hkv, D]
        v = self.v_proj(x).view(B, S, self.n_kv_heads, self.head_dim)  # [B, S, Hkv, D]
        if past is not None:
            k, v = torch.cat((past[0], k), dim=1), torch.cat((past[1], v), dim=1)  # [B, T, Hkv, D]
        return q, k, v

    def forward(self, x: torch.Tensor, past: Optional[KVCache] = None, aux: Optional[dict] = None) -> Tuple[torch.Tensor, KVCache]:
        B, S, _ = x.shape
        q, k, v = self.project(x, past)
        T = k.shape[1]
        out = attend_fast(q, k, v, self.head_dim**-0.5, causal_visibility(S, T, x.device), causal_prefill=past is None)
        return self.o_proj(out.reshape(B, S, self.n_heads * self.head_dim)), (k, v)
