"""The five trained variants: one shared trunk, one attention each.

Trunk: bytes (vocab 256), 4 layers, width 128, SwiGLU 512, 4 query heads, RoPE θ = 10⁴, trained
at context 512. Sparsity is active at that context: DSA keeps 64 of up to 512 keys (12.5 %); NSA
reads ≤ 63 compressed blocks + 4 selection blocks of 32 + a 64-token window per query.
"""

from __future__ import annotations

from typing import Dict

from .config import ModelConfig, NsaConfig

CONTEXT = 512

_TRUNK = dict(vocab_size=256, hidden_size=128, intermediate_size=512, num_hidden_layers=4, num_attention_heads=4, max_position_embeddings=CONTEXT)
_MLA = dict(q_lora_rank=64, kv_lora_rank=64, qk_nope_head_dim=32, qk_rope_head_dim=16, v_head_dim=32)

VARIANTS: Dict[str, ModelConfig] = {
    # Llama attention, 4 heads × 32, every head its own K/V
    "mha": ModelConfig(attention="mha", num_key_value_heads=4, head_dim=32, **_TRUNK),
    # Llama attention, 2 kv heads shared by pairs of query heads
    "gqa": ModelConfig(attention="gqa", num_key_value_heads=2, head_dim=32, **_TRUNK),
    # DeepSeek-V3 MLA: latent 64 + shared rope key 16 cached per token
    "mla": ModelConfig(attention="mla", num_key_value_heads=4, **_MLA, **_TRUNK),
    # DeepSeek-V3.2: the same MLA + a lightning indexer (4 heads × 32) choosing 64 keys per query
    "dsa": ModelConfig(attention="dsa", num_key_value_heads=4, index_n_heads=4, index_head_dim=32, index_topk=64, **_MLA, **_TRUNK),
    # NSA on GQA's projections: l=16, d=8, l′=32, n=4 (1 initial + the current block forced), w=64
    "nsa": ModelConfig(
        attention="nsa",
        num_key_value_heads=2,
        head_dim=32,
        nsa=NsaConfig(block_length=16, block_stride=8, select_block=32, num_selected=4, init_blocks=1, local_blocks=1, window=64, phi="mean", pe_k=True),
        **_TRUNK,
    ),
}

CHECKPOINT_NAMES = {name: f"fortunes-{name}" for name in VARIANTS}
