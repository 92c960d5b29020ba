"""Native Sparse Attention (spec §4) with the golden vectors' decisions.

o = g_cmp·Attn(q, K_cmp, V_cmp) + g_slc·Attn(q, K_slc, V_slc) + g_win·Attn(q, K_win, V_win), per query
head, GQA grouping, scale D^−1/2 in all branches. Compressed block i covers tokens
[i·d, i·d+l−1] and is visible once complete; selection block j covers [j·l′, (j+1)·l′−1]; its
importance is the overlap-weighted sum of compressed probabilities, summed over the group's heads;
n_init leading and n_local trailing candidate blocks are forced; the window holds w keys, the query
included; gates are sigmoid(W_g x + b), laid out (head, branch) = [cmp, slc, win] per head.
In the model (model_type "attnkit_nsa") q and k carry half-split RoPE before caching/compression.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attend, attend_fast, causal_visibility
from .config import ModelConfig, NsaConfig
from .numerics import wide
from .rope import RotaryTable, rope_halfsplit


class BlockCompressor(nn.Module):
    """φ: a block of l keys (values) → one compressed key (value), per kv head."""

    def __init__(self, nsa: NsaConfig, n_kv_heads: int, head_dim: int, v_head_dim: int):
        super().__init__()
        self.l, self.d, self.phi = nsa.block_length, nsa.block_stride, nsa.phi
        self.pe_k = nn.Parameter(torch.zeros(n_kv_heads, self.l, head_dim)) if nsa.pe_k else None
        self.pe_v = nn.Parameter(torch.zeros(n_kv_heads, self.l, v_head_dim)) if nsa.pe_v else None
        if self.phi == "mlp":
            hidden = int(nsa.mlp_hidden or 0)
            for side, width in (("k", head_dim), ("v", v_head_dim)):
                setattr(self, f"{side}_w1", nn.Parameter(torch.zeros(hidden, self.l * width)))
                setattr(self, f"{side}_b1", nn.Parameter(torch.zeros(hidden)))
                setattr(self, f"{side}_w2", nn.Parameter(torch.zeros(width, hidden)))
                setattr(self, f"{side}_b2", nn.Parameter(torch.zeros(width)))

    def _one(self, x: torch.Tensor, pe: Optional[torch.Tensor], side: str) -> torch.Tensor:
        B, T, Hkv, D = x.shape
        n = (T - self.l) // self.d + 1 if T >= self.l else 0  # only complete blocks exist
        if n == 0:
            return x.new_zeros(B, 0, Hkv, D)
        blocks = x.unfold(1, self.l, self.d)[:, :n].permute(0, 1, 2, 4, 3)  # [B, N, Hkv, l, D]
        if pe is not None:
            blocks = blocks + pe  # pe [Hkv, l, D]
        if self.phi == "mean":
            return blocks.mean(dim=3)  # [B, N, Hkv, D]
        w1, b1, w2, b2 = (getattr(self, f"{side}_{name}") for name in ("w1", "b1", "w2", "b2"))
        flat = blocks.reshape(B, n, Hkv, self.l * D)  # row-major (token, channel)
        return F.linear(F.relu(F.linear(flat, w1, b1)), w2, b2)  # [B, N, Hkv, D]

    def forward(self, k: torch.Tensor, v: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """k [B,T,Hkv,D], v [B,T,Hkv,Dv] → k_cmp [B,N,Hkv,D], v_cmp [B,N,Hkv,Dv]."""
        return self._one(k, self.pe_k, "k"), self._one(v, self.pe_v, "v")


@dataclass
class NsaStages:
    """Every intermediate the golden vectors pin down (token-major, as in their manifests)."""

    out: torch.Tensor  # [B, S, H, Dv]
    gates: torch.Tensor  # [B, S, H, 3]
    o_cmp: torch.Tensor
    o_slc: torch.Tensor
    o_win: torch.Tensor
    k_cmp: torch.Tensor  # [B, N, Hkv, D]
    v_cmp: torch.Tensor
    block_scores: torch.Tensor  # [B, S, Hkv, Nsel]
    selected_blocks: torch.Tensor  # [B, S, Hkv, Nsel] bool
    ranked: torch.Tensor  # [B, Hkv, S, Nsel]: block scores, +inf forced, −inf not a candidate


def overlap_matrix(n_cmp: int, n_sel: int, nsa: NsaConfig, device=None) -> torch.Tensor:
    """[N, Nsel]: shared tokens of compressed block i and selection block j, divided by d."""
    l, d, ls = nsa.block_length, nsa.block_stride, nsa.select_block
    i = torch.arange(n_cmp, device=device)[:, None]
    j = torch.arange(n_sel, device=device)[None, :]
    shared = (torch.minimum(i * d + l, (j + 1) * ls) - torch.maximum(i * d, j * ls)).clamp_min(0)
    return shared / d


def nsa_attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, gate_logits: torch.Tensor, compressor: BlockCompressor, nsa: NsaConfig, scale: float, fast: bool = False
) -> NsaStages:
    """q [B,S,H,D] at positions T−S..T−1, k [B,T,Hkv,D], v [B,T,Hkv,Dv], gate_logits [B,S,3H]."""
    B, S, H, _ = q.shape
    T, Hkv = k.shape[1], k.shape[2]
    G = H // Hkv
    device = q.device
    l, d, ls = nsa.block_length, nsa.block_stride, nsa.select_block
    pos = torch.arange(T - S, T, device=device)  # absolute query positions

    # 1–2. compression and compressed attention (a block is visible once complete)
    k_cmp, v_cmp = compressor(k, v)
    n_cmp = k_cmp.shape[1]
    cmp_visible = (torch.arange(n_cmp, device=device)[None, :] * d + l - 1) <= pos[:, None]  # [S, N]
    o_cmp, _, p_cmp = attend(q, k_cmp, v_cmp, scale, cmp_visible, return_probs=True)  # p_cmp [B, H, S, N]

    # 3. selection-block importance, summed over the group's query heads (no gradient: top-n is discrete)
    n_sel = -(-T // ls)
    with torch.no_grad():
        per_head = p_cmp.detach() @ overlap_matrix(n_cmp, n_sel, nsa, device).to(p_cmp.dtype)  # [B, H, S, Nsel]
        block_scores = per_head.view(B, Hkv, G, S, n_sel).sum(dim=2)  # [B, Hkv, S, Nsel]

        # 4. top-n among candidate blocks j ≤ ⌊p/l′⌋, forced blocks first
        j = torch.arange(n_sel, device=device)[None, :]
        own = (pos // ls)[:, None]  # [S, 1]
        candidate = j <= own  # [S, Nsel]
        forced = candidate & ((j < nsa.init_blocks) | (j > own - nsa.local_blocks))
        ranked = torch.where(forced, torch.full_like(block_scores, float("inf")), block_scores)
        ranked = ranked.masked_fill(~candidate, float("-inf"))
        picks = ranked.topk(min(nsa.num_selected, n_sel), dim=-1).indices
        selected = torch.zeros_like(ranked, dtype=torch.bool).scatter_(-1, picks, True) & candidate  # [B, Hkv, S, Nsel]

    # 5. selected attention: tokens of selected blocks, causally cut at p
    causal = causal_visibility(S, T, device)  # [S, T]
    token_selected = selected.repeat_interleave(ls, dim=-1)[..., :T] & causal  # [B, Hkv, S, T]
    slc_visible = token_selected[:, :, None]  # [B, Hkv, 1, S, T]
    # 6. sliding window: keys p−w+1 .. p
    key_pos = torch.arange(T, device=device)[None, :]
    win_visible = causal & (key_pos > pos[:, None] - nsa.window)  # [S, T]
    if fast:  # every selected/window row holds at least the query's own token: no empty rows
        o_slc = attend_fast(q, k, v, scale, slc_visible)
        o_win = attend_fast(q, k, v, scale, win_visible)
    else:
        o_slc = attend(q, k, v, scale, slc_visible)[0]
        o_win = attend(q, k, v, scale, win_visible)[0]

    # 7. gates, (head, branch) interleaved
    gates = torch.sigmoid(wide(gate_logits)).view(B, S, H, 3)  # [B, S, H, 3]
    out = gates[..., 0:1] * o_cmp + gates[..., 1:2] * o_slc + gates[..., 2:3] * o_win  # [B, S, H, Dv]
    return NsaStages(
        out=out.to(q.dtype),
        gates=gates,
        o_cmp=o_cmp,
        o_slc=o_slc,
        o_win=o_win,
        k_cmp=k_cmp,
        v_cmp=v_cmp,
        block_scores=block_scores.permute(0, 2, 1, 3),
        selected_blocks=selected.permute(0, 2, 1, 3),
        ranked=ranked,
    )


class NativeSparseAttention(nn.Module):
    """Llama projections + half-split RoPE, then `nsa_attend`; the cache is rotated K and V."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        assert cfg.nsa is not None
        self.nsa = cfg.nsa
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
        dim = cfg.hidden_size
        self.q_proj = nn.Linear(dim, self.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(dim, self.n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(dim, self.n_kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, dim, bias=False)
        self.gate_proj = nn.Linear(dim, 3 * self.n_heads, bias=True)
        self.compress = BlockCompressor(cfg.nsa, self.n_kv_heads, self.head_dim, self.head_dim)
        self.rotary = RotaryTable(self.head_dim, cfg.rope_theta)
        self.trace: Optional[list] = None  # evaluate.py collects selection scores here

    def forward(self, x: torch.Tensor, past: Optional[tuple] = None, aux: Optional[dict] = None):
        B, S, _ = x.shape
        start = 0 if past is None else past[0].shape[1]
        cos, sin = self.rotary(start, S)
        q = rope_halfsplit(self.q_proj(x).view(B, S, self.n_heads, self.head_dim), cos, sin)  # [B, S, H, D]
        k = rope_halfsplit(self.k_proj(x).view(B, S, self.n_kv_heads, self.head_dim), cos, sin)  # [B, S, Hkv, D]
        v = self.v_proj(x).view(B, S, self.n_kv_heads, self.head_dim)  # [B, S, Hkv, D]
        if past is not None:
            k, v = torch.cat((past[0], k), dim=1), torch.cat((past[1], v), dim=1)  # [B, T, Hkv, D]
        stages = nsa_attend(q, k, v, self.gate_proj(x), self.compress, self.nsa, self.head_dim**-0.5, fast=True)
        if self.trace is not None:
            self.trace.append((stages.ranked, self.nsa.num_selected))
        return self.o_proj(stages.out.reshape(B, S, self.n_heads * self.head_dim)), (k, v)
