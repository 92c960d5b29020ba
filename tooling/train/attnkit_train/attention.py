"""Masked softmax attention (spec §0, §1), the core every variant calls.

`attend` is the plain reference: explicit scores, float32 softmax, an empty visibility set gives
an output of 0 (spec §0; only NSA's compressed branch can be empty). `attend_fast` uses PyTorch's
fused `scaled_dot_product_attention` when this torch has it (≥ 2.0) and falls back to `attend`
otherwise; tests check the two against each other and against the golden vectors.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F

from .numerics import wide


def causal_visibility(q_len: int, kv_len: int, device=None) -> torch.Tensor:
    """Bottom-right causal mask [S, T]: new query i sits at T − S + i and sees keys 0..T − S + i."""
    q_pos = torch.arange(kv_len - q_len, kv_len, device=device)[:, None]
    k_pos = torch.arange(kv_len, device=device)[None, :]
    return k_pos <= q_pos


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    scale: float,
    visible: Optional[torch.Tensor],
    return_probs: bool = False,
) -> Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
    """q [B,S,H,D], k [B,T,Hkv,D], v [B,T,Hkv,Dv]; query head h reads kv head ⌊h/G⌋.

    `visible` is a bool mask broadcastable to [B, Hkv, G, S, T] (a plain [S, T] causal mask
    works), or None for no mask. Returns (out [B,S,H,Dv], lse [B,S,H], probs [B,H,S,T] or None).
    """
    B, S, H, D = q.shape
    T, Hkv, Dv = k.shape[1], k.shape[2], v.shape[3]
    G = H // Hkv
    if T == 0:  # nothing to attend to (NSA's compressed branch before the first complete block)
        probs = q.new_zeros(B, H, S, 0, dtype=torch.float32) if return_probs else None
        return q.new_zeros(B, S, H, Dv), q.new_full((B, S, H), float("-inf"), dtype=torch.float32), probs
    qg = q.reshape(B, S, Hkv, G, D)  # [B, S, Hkv, G, D]
    scores = torch.einsum("bshgd,bthd->bhgst", wide(qg), wide(k)) * scale  # [B, Hkv, G, S, T]
    if visible is not None:
        scores = scores.masked_fill(~visible, float("-inf"))
    row_max = scores.amax(dim=-1, keepdim=True)
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    weights = torch.exp(scores - row_max)
    denom = weights.sum(dim=-1, keepdim=True)
    probs = weights / denom.clamp_min(torch.finfo(torch.float32).tiny)  # empty rows stay 0
    out = torch.einsum("bhgst,bthd->bshgd", probs, wide(v)).reshape(B, S, H, Dv)  # [B, S, H, Dv]
    lse = (row_max + torch.log(denom)).squeeze(-1)  # [B, Hkv, G, S]; −inf for an empty row
    lse = lse.permute(0, 3, 1, 2).reshape(B, S, H)
    full_probs = probs.reshape(B, H, S, T) if return_probs else None
    return out.to(q.dtype), lse, full_probs


def has_fused_sdpa() -> bool:
    return hasattr(F, "scaled_dot_product_attention")


def attend_fast(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, visible: Optional[torch.Tensor], causal_prefill: bool = False) -> torch.Tensor:
    """Same output as `attend` (no lse/probs), through PyTorch's fused kernel where available.

    `causal_prefill=True` says `visible` is exactly the causal mask of a prefill from position 0
    (S == T), so the flash kernel's `is_causal` (top-left, equal to bottom-right when S == T)
    applies. Declines to the reference when torch lacks SDPA (1.x). Rows with no visible key
    must not reach this function (SDPA returns NaN for them): only NSA's compressed branch has
    such rows, and it always calls `attend`.
    """
    if not has_fused_sdpa():
        return attend(q, k, v, scale, visible)[0]
    B, S, H, D = q.shape
    T, Hkv = k.shape[1], k.shape[2]
    G = H // Hkv
    # SDPA wants [B, H, S, D]; repeat kv heads so head h reads kv head ⌊h/G⌋ (repeat_interleave)
    qh = q.transpose(1, 2)
    kh = k.transpose(1, 2).repeat_interleave(G, dim=1) if G > 1 else k.transpose(1, 2)
    vh = v.transpose(1, 2).repeat_interleave(G, dim=1) if G > 1 else v.transpose(1, 2)
    if causal_prefill and S == T:
        out = F.scaled_dot_product_attention(qh, kh, vh, is_causal=True, scale=scale)
    elif visible is None:
        out = F.scaled_dot_product_attention(qh, kh, vh, scale=scale)
    else:
        mask = visible
        if mask.dim() == 5:  # [B, Hkv, G, S, T] → [B, H, S, T]
            mask = mask.expand(B, Hkv, G, S, T).reshape(B, H, S, T)
        out = F.scaled_dot_product_attention(qh, kh, vh, attn_mask=mask, scale=scale)
    return out.transpose(1, 2)  # [B, S, H, Dv]
