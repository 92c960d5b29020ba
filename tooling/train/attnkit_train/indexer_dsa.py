"""DeepSeek-V3.2 lightning indexer (spec §3) and its training loss (V3.2 report, §2.1).

I[p, t] = Σ_j w_j · ReLU(q_I,j · k_I,t) with w = weights_proj(x) · H_I^−1/2 · D_I^−1/2, RoPE in the
half-split layout on the FIRST dr channels of q_I and k_I ([rope | nope], the opposite of MLA's
heads). The Hadamard rotation of the reference is orthonormal and leaves I unchanged, so it is
left out. Selection keeps the min(index_topk, visible) best visible keys, with no forced self
token.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .config import ModelConfig
from .numerics import wide
from .rope import rope_halfsplit


class LightningIndexer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.n_heads, self.head_dim, self.rope_dim = cfg.index_n_heads, cfg.index_head_dim, cfg.qk_rope_head_dim
        self.topk = cfg.index_topk
        self.wq_b = nn.Linear(cfg.q_lora_rank, self.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(cfg.hidden_size, self.head_dim, bias=False)
        self.k_norm = nn.LayerNorm(self.head_dim, eps=1e-6)
        self.weights_proj = nn.Linear(cfg.hidden_size, self.n_heads, bias=False)

    def _rope_first(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        r = self.rope_dim
        return torch.cat((rope_halfsplit(x[..., :r], cos, sin), x[..., r:]), dim=-1)

    def keys(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x [B,S,dim] → k_I [B,S,D_I] (LayerNorm, then RoPE): the indexer's cache rows."""
        return self._rope_first(self.k_norm(self.wk(x)), cos, sin)

    def scores(
        self, x: torch.Tensor, q_latent: torch.Tensor, k_all: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, visible: torch.Tensor
    ) -> torch.Tensor:
        """x [B,S,dim], q_latent [B,S,Cq], k_all [B,T,D_I], visible [S,T] → I [B,S,T], −inf where not visible."""
        B, S, _ = x.shape
        q = self._rope_first(self.wq_b(q_latent).view(B, S, self.n_heads, self.head_dim), cos, sin)  # [B, S, H_I, D_I]
        w = wide(self.weights_proj(x)) * (self.n_heads**-0.5 * self.head_dim**-0.5)  # [B, S, H_I]
        logits = F.relu(torch.einsum("bshd,btd->bsht", wide(q), wide(k_all)))  # [B, S, H_I, T]
        index = torch.einsum("bsh,bsht->bst", w, logits)  # [B, S, T]
        return index.masked_fill(~visible, float("-inf"))

    def select(self, index: torch.Tensor, visible: torch.Tensor, topk: Optional[int] = None) -> torch.Tensor:
        """I [B,S,T] → bool [B,S,T]: the min(top-k, visible) best visible keys of each query."""
        k = min(self.topk if topk is None else topk, index.shape[-1])
        picks = index.topk(k, dim=-1).indices
        chosen = torch.zeros_like(index, dtype=torch.bool).scatter_(-1, picks, True)
        # rows with fewer than k visible keys also picked −inf entries: drop them again
        return chosen & visible


def indexer_kl(index: torch.Tensor, attn_probs: torch.Tensor) -> torch.Tensor:
    """KL(p ‖ softmax(I)) summed over keys, averaged over queries (V3.2 report eqs. 3 and 4).

    index [B,S,T] (−inf outside the keys the loss runs over: the visible ones in the dense
    warm-up, the selected ones in sparse training); attn_probs [B,H,S,T] the main attention
    (zero outside that set). The target p sums the heads and L1-normalises (= head mean, as each
    head's row sums to 1) and is detached: the indexer learns from this loss alone.
    """
    target = attn_probs.detach().float().mean(dim=1)  # [B, S, T]
    log_q = torch.log_softmax(index, dim=-1)
    present = target > 0
    log_q = log_q.masked_fill(~present, 0.0)
    log_p = torch.log(target.clamp_min(torch.finfo(torch.float32).tiny))
    kl = torch.where(present, target * (log_p - log_q), torch.zeros_like(target))
    return kl.sum(dim=-1).mean()
