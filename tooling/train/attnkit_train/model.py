"""The reference decoder: byte embedding, pre-norm blocks, final RMSNorm, untied LM head.

    x = x + attn(RMSNorm(x));  x = x + SwiGLU(RMSNorm(x))

Module names follow Hugging Face (`model.layers.{i}.self_attn.q_proj`, …) so `state_dict()`
keys are the checkpoint's tensor names (apps/reference-model/docs/checkpoint-format.md).
"""

from __future__ import annotations

import math
import zlib
from typing import List, Optional, Tuple

import torch
from torch import nn

from .attention_gqa import GroupedQueryAttention
from .attention_mla import DSA_MODES, MultiHeadLatentAttention
from .attention_nsa import NativeSparseAttention
from .config import ModelConfig
from .mlp import SwiGLU
from .norm import RMSNorm


def make_attention(cfg: ModelConfig) -> nn.Module:
    if cfg.attention in ("mha", "gqa", "mqa"):
        return GroupedQueryAttention(cfg)
    if cfg.attention in ("mla", "dsa"):
        return MultiHeadLatentAttention(cfg, with_indexer=cfg.attention == "dsa")
    return NativeSparseAttention(cfg)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = make_attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = SwiGLU(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x: torch.Tensor, past: Optional[tuple], aux: Optional[dict]) -> Tuple[torch.Tensor, tuple]:
        h, present = self.self_attn(self.input_layernorm(x), past=past, aux=aux)
        x = x + h
        return x + self.mlp(self.post_attention_layernorm(x)), present


class Decoder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)


class CausalLM(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.config = cfg.validate()
        self.model = Decoder(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    def forward(self, ids: torch.Tensor, past: Optional[List[tuple]] = None, aux: Optional[dict] = None) -> Tuple[torch.Tensor, List[tuple]]:
        """ids [B,S] (bytes) → logits [B,S,V] and the per-layer caches (pass them back as `past`)."""
        x = self.model.embed_tokens(ids)  # [B, S, dim]
        presents = []
        for i, layer in enumerate(self.model.layers):
            x, present = layer(x, None if past is None else past[i], aux)
            presents.append(present)
        return self.lm_head(self.model.norm(x)), presents

    def set_dsa_mode(self, mode: str) -> None:
        if mode not in DSA_MODES:
            raise ValueError(f"[set_dsa_mode] expected one of {DSA_MODES}, got {mode!r}")
        for layer in self.model.layers:
            if isinstance(layer.self_attn, MultiHeadLatentAttention):
                layer.self_attn.dsa_mode = mode

    def indexer_parameters(self) -> List[nn.Parameter]:
        return [p for n, p in self.named_parameters() if ".indexer." in n]

    def main_parameters(self) -> List[nn.Parameter]:
        return [p for n, p in self.named_parameters() if ".indexer." not in n]

    @torch.no_grad()
    def init_weights(self, seed: int) -> None:
        """GPT-2 style: N(0, 0.02), residual projections N(0, 0.02/√(2L)), norms 1, biases 0,
        NSA gate bias 0 (all branches start at 0.5), key/value PE 0."""
        resid_std = 0.02 / math.sqrt(2 * self.config.num_hidden_layers)
        for name, p in self.named_parameters():
            if name.endswith("norm.weight") or name.endswith("layernorm.weight"):
                p.fill_(1.0)
            elif name.endswith(".bias") or ".compress.pe_" in name:
                p.zero_()
            else:
                std = resid_std if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
                # one stream per tensor name: MLA and MLA+DSA start from identical shared weights
                gen = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
                p.copy_(torch.randn(p.shape, generator=gen) * std)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
