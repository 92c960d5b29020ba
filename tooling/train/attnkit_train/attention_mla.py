"""Multi-head Latent Attention (spec §2), optionally with DSA's top-k selection (spec §3).

Per token: q = wq·x or q_b(RMSNorm(q_a(x))) → [H, dn+dr], heads [nope | rope], interleaved
RoPE on the rope slice; the cache is the RMSNorm'ed latent c [C] and one shared rotated k_pe
[dr]. Scale (dn+dr)^−1/2 (· mscale² under YaRN). `naive` expands per-head K/V through kv_b;
`absorbed` attends in the latent space; both compute the same function.

DSA modes (`dsa_mode`, set by the trainer; inference always runs "sparse"):
  "dense"  — plain causal MLA, the indexer is not run (dense pre-training stage);
  "warmup" — dense attention; the indexer learns KL(head-mean attention ‖ softmax(I)) over the
             visible keys, from detached inputs (V3.2 dense warm-up);
  "sparse" — attention restricted to the indexer's top-k; in training the indexer learns the
             same KL over the selected keys, again from detached inputs.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from torch import nn

from .attention import attend, attend_fast, causal_visibility
from .config import ModelConfig, softmax_scale_mla
from .indexer_dsa import LightningIndexer, indexer_kl
from .norm import RMSNorm
from .rope import RotaryTable, rope_interleaved

DSA_MODES = ("dense", "warmup", "sparse")


class MultiHeadLatentAttention(nn.Module):
    def __init__(self, cfg: ModelConfig, with_indexer: bool = False):
        super().__init__()
        self.n_heads, self.dn, self.dr, self.dv = cfg.num_attention_heads, cfg.qk_nope_head_dim, cfg.qk_rope_head_dim, cfg.v_head_dim
        self.kv_rank, self.q_rank = cfg.kv_lora_rank, cfg.q_lora_rank
        dim, H = cfg.hidden_size, self.n_heads
        if self.q_rank > 0:
            self.q_a_proj = nn.Linear(dim, self.q_rank, bias=False)
            self.q_a_layernorm = RMSNorm(self.q_rank, cfg.rms_norm_eps)
            self.q_b_proj = nn.Linear(self.q_rank, H * (self.dn + self.dr), bias=False)
        else:
            self.q_proj = nn.Linear(dim, H * (self.dn + self.dr), bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(dim, self.kv_rank + self.dr, bias=False)
        self.kv_a_layernorm = RMSNorm(self.kv_rank, cfg.rms_norm_eps)
        self.kv_b_proj = nn.Linear(self.kv_rank, H * (self.dn + self.dv), bias=False)
        self.o_proj = nn.Linear(H * self.dv, dim, bias=False)
        self.rotary = RotaryTable(self.dr, cfg.rope_theta, cfg.yarn)
        self.scale = softmax_scale_mla(cfg)
        self.indexer = LightningIndexer(cfg) if with_indexer else None
        self.dsa_mode = "sparse"
        self.trace: Optional[list] = None  # evaluate.py collects selection scores here

    def query(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """→ q [B,S,H,dn+dr] with the rope slice rotated, and the query latent [B,S,Cq] (or None)."""
        B, S, _ = x.shape
        if self.q_rank > 0:
            q_latent = self.q_a_layernorm(self.q_a_proj(x))  # [B, S, Cq]
            q = self.q_b_proj(q_latent)
        else:
            q_latent, q = None, self.q_proj(x)
        q = q.view(B, S, self.n_heads, self.dn + self.dr)  # [B, S, H, dn+dr]
        q = torch.cat((q[..., : self.dn], rope_interleaved(q[..., self.dn :], cos, sin)), dim=-1)
        return q, q_latent

    def latent(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """→ the cache rows: normalised latent c [B,S,C] and rotated shared key k_pe [B,S,dr]."""
        kv = self.kv_a_proj_with_mqa(x)  # [B, S, C+dr]
        return self.kv_a_layernorm(kv[..., : self.kv_rank]), rope_interleaved(kv[..., self.kv_rank :], cos, sin)

    def attend_naive(self, q, c, k_pe, visible, return_probs=False, causal_prefill=False):
        """Expand per-head K/V: [k_nope; v] = W_b[h]·c. → out [B,S,H,dv], probs [B,H,S,T] or None."""
        B, T, _ = c.shape
        H = self.n_heads
        kv = self.kv_b_proj(c).view(B, T, H, self.dn + self.dv)  # [B, T, H, dn+dv]
        k = torch.cat((kv[..., : self.dn], k_pe[:, :, None, :].expand(B, T, H, self.dr)), dim=-1)  # [B, T, H, dn+dr]
        v = kv[..., self.dn :]  # [B, T, H, dv]
        if return_probs:
            out, _, probs = attend(q, k, v, self.scale, visible, return_probs=True)
            return out, probs
        return attend_fast(q, k, v, self.scale, visible, causal_prefill=causal_prefill), None

    def attend_absorbed(self, q, c, k_pe, visible):
        """Attend in the latent space: q̃_h = W_UK[h]ᵀ q_nope_h, ō_h = Σ p c, o_h = W_UV[h] ō_h."""
        H, C = self.n_heads, self.kv_rank
        w = self.kv_b_proj.weight.view(H, self.dn + self.dv, C)
        w_uk, w_uv = w[:, : self.dn], w[:, self.dn :]  # [H, dn, C], [H, dv, C]
        q_lat = torch.einsum("bshd,hdc->bshc", q[..., : self.dn], w_uk)  # [B, S, H, C]
        q_cat = torch.cat((q_lat, q[..., self.dn :]), dim=-1)  # [B, S, H, C+dr]
        k_cat = torch.cat((c, k_pe), dim=-1)[:, :, None, :]  # [B, T, 1, C+dr]: one latent "kv head"
        o_lat, _, _ = attend(q_cat, k_cat, c[:, :, None, :], self.scale, visible)  # [B, S, H, C]
        return torch.einsum("bshc,hvc->bshv", o_lat, w_uv)  # [B, S, H, dv]

    def forward(self, x: torch.Tensor, past: Optional[tuple] = None, aux: Optional[dict] = None, absorbed: bool = False):
        """x [B,S,dim]; past = (c [B,Tc,C], k_pe [B,Tc,dr][, index keys [B,Tc,D_I]]).

        `aux` (a dict) marks a training forward: DSA layers append their indexer loss to
        aux["indexer_kl"]. Returns (y [B,S,dim], present cache).
        """
        B, S, _ = x.shape
        start = 0 if past is None else past[0].shape[1]
        cos, sin = self.rotary(start, S)
        q, q_latent = self.query(x, cos, sin)
        c, k_pe = self.latent(x, cos, sin)
        if past is not None:
            c, k_pe = torch.cat((past[0], c), dim=1), torch.cat((past[1], k_pe), dim=1)  # [B, T, C], [B, T, dr]
        T = c.shape[1]
        visible = causal_visibility(S, T, x.device)  # [S, T]
        present: tuple = (c, k_pe)
        index = None
        if self.indexer is not None:
            training = aux is not None
            # the indexer learns only from its KL loss: its inputs are detached from the LM graph
            x_i = x.detach() if training else x
            q_latent_i = q_latent.detach() if training else q_latent
            k_index = self.indexer.keys(x_i, cos, sin)  # [B, S, D_I]
            if past is not None:
                k_index = torch.cat((past[2], k_index), dim=1)  # [B, T, D_I]
            present = present + (k_index,)
            if self.dsa_mode != "dense":
                index = self.indexer.scores(x_i, q_latent_i, k_index, cos, sin, visible)  # [B, S, T]
                if self.dsa_mode == "sparse":
                    if self.trace is not None:
                        self.trace.append((index.detach(), self.indexer.topk))
                    selected = self.indexer.select(index, visible)  # [B, S, T]
                    index = index.masked_fill(~selected, float("-inf"))
                    visible = selected[:, None, None, :, :]  # [B, 1, 1, S, T]
        need_probs = aux is not None and index is not None
        if absorbed:
            out = self.attend_absorbed(q, c, k_pe, visible)
        else:
            out, probs = self.attend_naive(q, c, k_pe, visible, return_probs=need_probs, causal_prefill=past is None and visible.dim() == 2)
            if need_probs:
                aux.setdefault("indexer_kl", []).append(indexer_kl(index, probs))
        return self.o_proj(out.reshape(B, S, self.n_heads * self.dv)), present
