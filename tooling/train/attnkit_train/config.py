"""Model configuration and its Hugging Face `config.json` form (checkpoint-format.md).

One dataclass covers every variant; `to_hf_config` / `from_hf_config` translate to and from the
config keys of `llama` (MHA/GQA/MQA), `deepseek_v3` (MLA), `deepseek_v32` (MLA + DSA) and our
`attnkit_nsa`. Defaults are those of the trained tiny checkpoints (tooling/train/README.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Dict, Optional

from .rope import Yarn

ATTENTIONS = ("mha", "gqa", "mqa", "mla", "dsa", "nsa")
MODEL_TYPES = {"mha": "llama", "gqa": "llama", "mqa": "llama", "mla": "deepseek_v3", "dsa": "deepseek_v32", "nsa": "attnkit_nsa"}
ARCHITECTURES = {"llama": "LlamaForCausalLM", "deepseek_v3": "DeepseekV3ForCausalLM", "deepseek_v32": "DeepseekV32ForCausalLM", "attnkit_nsa": "AttnkitNsaForCausalLM"}


@dataclass(frozen=True)
class NsaConfig:
    """Spec §4 names: l, d, l′, n, n_init, n_local, w, φ."""

    block_length: int = 16  # l: tokens per compression block
    block_stride: int = 8  # d: stride between compression blocks (d | l, d | l′)
    select_block: int = 32  # l′: tokens per selection block
    num_selected: int = 4  # n: selection blocks per query, forced ones included
    init_blocks: int = 1  # n_init: leading blocks always selected
    local_blocks: int = 1  # n_local: blocks ending at the query's own block always selected
    window: int = 64  # w: sliding-window keys, the query's own included
    phi: str = "mean"  # compression: "mean" (+ key/value PE) or "mlp"
    mlp_hidden: Optional[int] = None  # hidden width of φ = mlp
    pe_k: bool = True  # learned intra-block key position encoding [Hkv, l, D]
    pe_v: bool = False  # learned intra-block value position encoding [Hkv, l, Dv]

    def validate(self) -> None:
        l, d, ls = self.block_length, self.block_stride, self.select_block
        if l % d != 0 or ls % d != 0:
            raise ValueError(f"[NsaConfig] expected block_stride to divide block_length and select_block, got l={l}, d={d}, l'={ls}")
        if self.init_blocks + self.local_blocks > self.num_selected:
            raise ValueError(f"[NsaConfig] expected init_blocks + local_blocks <= num_selected, got {self.init_blocks}+{self.local_blocks} > {self.num_selected}")
        if self.phi not in ("mean", "mlp"):
            raise ValueError(f"[NsaConfig] expected phi 'mean' or 'mlp', got {self.phi!r}")
        if self.phi == "mlp" and not self.mlp_hidden:
            raise ValueError("[NsaConfig] expected mlp_hidden for phi 'mlp'")


@dataclass(frozen=True)
class ModelConfig:
    attention: str = "mha"
    vocab_size: int = 256
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    head_dim: int = 32
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    max_position_embeddings: int = 512
    tie_word_embeddings: bool = False
    # MLA (spec §2): Cq (0 = plain q projection), C, dn, dr, dv
    q_lora_rank: int = 0
    kv_lora_rank: int = 64
    qk_nope_head_dim: int = 32
    qk_rope_head_dim: int = 16
    v_head_dim: int = 32
    yarn: Optional[Yarn] = None
    # DSA indexer (spec §3): H_I, D_I, top-k
    index_n_heads: int = 4
    index_head_dim: int = 32
    index_topk: int = 64
    # NSA (spec §4)
    nsa: Optional[NsaConfig] = None

    def validate(self) -> "ModelConfig":
        if self.attention not in ATTENTIONS:
            raise ValueError(f"[ModelConfig] expected attention in {ATTENTIONS}, got {self.attention!r}")
        if self.num_attention_heads % self.num_key_value_heads != 0:
            raise ValueError(f"[ModelConfig] expected num_key_value_heads to divide num_attention_heads, got {self.num_key_value_heads} and {self.num_attention_heads}")
        if self.attention == "dsa" and self.q_lora_rank <= 0:
            raise ValueError("[ModelConfig] DSA reads the query latent: expected q_lora_rank > 0")
        if self.attention == "dsa" and self.index_head_dim < self.qk_rope_head_dim:
            raise ValueError(f"[ModelConfig] expected index_head_dim >= qk_rope_head_dim, got {self.index_head_dim} < {self.qk_rope_head_dim}")
        if self.attention == "nsa":
            if self.nsa is None:
                raise ValueError("[ModelConfig] expected an nsa block for attention 'nsa'")
            self.nsa.validate()
        return self

    @property
    def model_type(self) -> str:
        return MODEL_TYPES[self.attention]

    def kv_elements_per_token(self) -> float:
        """Cache elements per token per layer (spec §5 formulas)."""
        if self.attention in ("mha", "gqa", "mqa"):
            return 2 * self.num_key_value_heads * self.head_dim
        if self.attention == "mla":
            return self.kv_lora_rank + self.qk_rope_head_dim
        if self.attention == "dsa":
            return self.kv_lora_rank + self.qk_rope_head_dim + self.index_head_dim
        assert self.nsa is not None
        # raw K and V plus one compressed K/V per d tokens, amortised
        return self.num_key_value_heads * 2 * self.head_dim * (1 + 1 / self.nsa.block_stride)

    # ---- Hugging Face config.json ----

    def to_hf_config(self, torch_dtype: str = "float16") -> Dict[str, Any]:
        self.validate()
        mt = self.model_type
        cfg: Dict[str, Any] = {
            "architectures": [ARCHITECTURES[mt]],
            "model_type": mt,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "hidden_act": "silu",
            "rms_norm_eps": self.rms_norm_eps,
            "max_position_embeddings": self.max_position_embeddings,
            "tie_word_embeddings": self.tie_word_embeddings,
            "attention_bias": False,
            "rope_theta": self.rope_theta,
            "rope_parameters": {"rope_type": "default", "rope_theta": self.rope_theta},
            "bos_token_id": None,
            "eos_token_id": None,
            "pad_token_id": None,
            "torch_dtype": torch_dtype,
        }
        if mt in ("llama", "attnkit_nsa"):
            cfg["head_dim"] = self.head_dim
        if mt in ("deepseek_v3", "deepseek_v32"):
            cfg.update(
                q_lora_rank=self.q_lora_rank if self.q_lora_rank > 0 else None,
                kv_lora_rank=self.kv_lora_rank,
                qk_nope_head_dim=self.qk_nope_head_dim,
                qk_rope_head_dim=self.qk_rope_head_dim,
                v_head_dim=self.v_head_dim,
                # every layer dense: MoE is out of scope of the reference model
                first_k_dense_replace=self.num_hidden_layers,
                mlp_layer_types=["dense"] * self.num_hidden_layers,
                n_routed_experts=1,
                n_shared_experts=1,
                num_experts_per_tok=1,
                n_group=1,
                topk_group=1,
                moe_intermediate_size=self.intermediate_size,
            )
            if mt == "deepseek_v3":
                cfg["rope_interleave"] = True
            if self.yarn is not None:
                y = self.yarn
                cfg["rope_parameters"] = {
                    "rope_type": "yarn",
                    "rope_theta": self.rope_theta,
                    "factor": y.factor,
                    "original_max_position_embeddings": y.original_seq_len,
                    "beta_fast": y.beta_fast,
                    "beta_slow": y.beta_slow,
                    "mscale": y.mscale,
                    "mscale_all_dim": y.mscale,
                }
        if mt == "deepseek_v32":
            cfg.update(index_n_heads=self.index_n_heads, index_head_dim=self.index_head_dim, index_topk=self.index_topk)
        if mt == "attnkit_nsa":
            assert self.nsa is not None
            nsa = asdict(self.nsa)
            if nsa["mlp_hidden"] is None:
                del nsa["mlp_hidden"]
            cfg["nsa"] = nsa
        return cfg

    @staticmethod
    def from_hf_config(cfg: Dict[str, Any]) -> "ModelConfig":
        mt = cfg.get("model_type")
        if mt not in ARCHITECTURES:
            raise ValueError(f"[from_hf_config] expected model_type in {sorted(ARCHITECTURES)}, got {mt!r}")
        if cfg.get("hidden_act", "silu") != "silu":
            raise ValueError(f"[from_hf_config] expected hidden_act 'silu', got {cfg.get('hidden_act')!r}")
        if cfg.get("attention_bias"):
            raise ValueError("[from_hf_config] attention_bias is not supported by the training code")
        layers = int(cfg["num_hidden_layers"])
        heads = int(cfg["num_attention_heads"])
        kv_heads = int(cfg.get("num_key_value_heads") or heads)
        rope = dict(cfg.get("rope_parameters") or cfg.get("rope_scaling") or {})
        theta = float(rope.get("rope_theta", cfg.get("rope_theta", 10000.0)))
        base = dict(
            vocab_size=int(cfg["vocab_size"]),
            hidden_size=int(cfg["hidden_size"]),
            intermediate_size=int(cfg["intermediate_size"]),
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=kv_heads,
            rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
            rope_theta=theta,
            max_position_embeddings=int(cfg.get("max_position_embeddings", 4096)),
            tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        )
        if mt in ("llama", "attnkit_nsa"):
            head_dim = int(cfg.get("head_dim") or int(cfg["hidden_size"]) // heads)
            rope_type = rope.get("rope_type", rope.get("type", "default"))
            if rope_type != "default":
                raise ValueError(f"[from_hf_config] expected default RoPE for {mt}, got {rope_type!r}")
            if mt == "llama":
                attention = "mha" if kv_heads == heads else ("mqa" if kv_heads == 1 else "gqa")
                return ModelConfig(attention=attention, head_dim=head_dim, **base).validate()
            nsa = NsaConfig(**cfg["nsa"])
            return ModelConfig(attention="nsa", head_dim=head_dim, nsa=nsa, **base).validate()
        # deepseek_v3 / deepseek_v32
        dense = cfg.get("mlp_layer_types")
        all_dense = all(t == "dense" for t in dense) if dense else int(cfg.get("first_k_dense_replace", 0)) >= layers
        if not all_dense:
            raise ValueError("[from_hf_config] expected every layer dense (first_k_dense_replace >= num_hidden_layers): MoE is out of scope")
        yarn = None
        rope_type = rope.get("rope_type", rope.get("type", "default"))
        if rope_type == "yarn":
            mscale = rope.get("mscale")
            mscale_all_dim = rope.get("mscale_all_dim")
            if mscale is None or mscale_all_dim is None or float(mscale) != float(mscale_all_dim):
                # transformers then also scales cos/sin by mscale(s, mscale)/mscale(s, mscale_all_dim)
                raise ValueError(f"[from_hf_config] expected YaRN mscale == mscale_all_dim (both given), got {mscale} and {mscale_all_dim}")
            yarn = Yarn(
                factor=float(rope["factor"]),
                original_seq_len=int(rope["original_max_position_embeddings"]),
                beta_fast=float(rope.get("beta_fast", 32)),
                beta_slow=float(rope.get("beta_slow", 1)),
                mscale=float(mscale_all_dim),
            )
        elif rope_type != "default":
            raise ValueError(f"[from_hf_config] expected default or yarn RoPE, got {rope_type!r}")
        mla = dict(
            q_lora_rank=int(cfg.get("q_lora_rank") or 0),
            kv_lora_rank=int(cfg["kv_lora_rank"]),
            qk_nope_head_dim=int(cfg["qk_nope_head_dim"]),
            qk_rope_head_dim=int(cfg["qk_rope_head_dim"]),
            v_head_dim=int(cfg["v_head_dim"]),
            yarn=yarn,
        )
        if mt == "deepseek_v3":
            return ModelConfig(attention="mla", **mla, **base).validate()
        return ModelConfig(
            attention="dsa",
            index_n_heads=int(cfg["index_n_heads"]),
            index_head_dim=int(cfg["index_head_dim"]),
            index_topk=int(cfg["index_topk"]),
            **mla,
            **base,
        ).validate()

    def with_(self, **changes: Any) -> "ModelConfig":
        return replace(self, **changes)


def softmax_scale_mla(cfg: ModelConfig) -> float:
    """(dn+dr)^−1/2, times mscale² under YaRN (spec §2 step 4)."""
    scale = (cfg.qk_nope_head_dim + cfg.qk_rope_head_dim) ** -0.5
    if cfg.yarn is not None:
        scale *= cfg.yarn.softmax_mscale() ** 2
    return scale

