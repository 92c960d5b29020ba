"""The attention modules against every golden case of shared/golden (spec §1–§4).

Run: /usr/bin/python3 -m pytest tooling/train/tests (README.md).
"""

from __future__ import annotations

import pytest
import torch

from attnkit_train.attention import attend, attend_fast, causal_visibility, has_fused_sdpa
from attnkit_train.attention_mla import MultiHeadLatentAttention
from attnkit_train.attention_nsa import BlockCompressor, nsa_attend
from attnkit_train.config import ModelConfig, NsaConfig
from attnkit_train.rope import Yarn, cos_sin, inv_freq, rope_halfsplit, rope_interleaved

from golden import Case, case_names


@pytest.mark.parametrize("name", case_names(["rope"]))
def test_rope(name: str) -> None:
    case = Case(name)
    cfg = case.config
    yarn = None
    if cfg["yarn"]:
        y = cfg["yarn"]
        yarn = Yarn(factor=y["factor"], original_seq_len=y["original_seq_len"], beta_fast=y["beta_fast"], beta_slow=y["beta_slow"])
    freqs = inv_freq(cfg["dim"], cfg["rope_theta"], yarn)
    case.check("inv_freq", freqs)
    cos, sin = cos_sin(freqs, torch.tensor(cfg["positions"]))
    x = case.input("x")[None]  # [1, S, H, D]
    case.check("y_interleaved", rope_interleaved(x, cos, sin)[0])
    case.check("y_halfsplit", rope_halfsplit(x, cos, sin)[0])


@pytest.mark.parametrize("name", case_names(["mha", "gqa", "mqa"]))
@pytest.mark.parametrize("fast", [False, True])
def test_mha_gqa_mqa(name: str, fast: bool) -> None:
    case = Case(name)
    cfg = case.config
    if case.has("inputs", "k"):
        q, k, v = case.input("q"), case.input("k"), case.input("v")
    else:  # decode / chunk: append the new rows to the cache
        q = case.input("q")
        k = torch.cat((case.input("k_cache"), case.input("k_new")), dim=1)
        v = torch.cat((case.input("v_cache"), case.input("v_new")), dim=1)
        case.check("k_cache_after", k)
        case.check("v_cache_after", v)
    visible = causal_visibility(q.shape[1], k.shape[1]) if cfg["causal"] else None
    if fast:
        case.check("out", attend_fast(q, k, v, cfg["scale"], visible, causal_prefill=cfg["kind"] == "prefill"))
    else:
        out, lse, _ = attend(q, k, v, cfg["scale"], visible)
        case.check("out", out)
        case.check("lse", lse)


def mla_config(cfg: dict, attention: str = "mla") -> ModelConfig:
    yarn = None
    if cfg.get("yarn"):
        y = cfg["yarn"]
        yarn = Yarn(factor=y["factor"], original_seq_len=y["original_seq_len"], beta_fast=y["beta_fast"], beta_slow=y["beta_slow"], mscale=y["mscale"])
    extra = {}
    if attention == "dsa":
        extra = dict(index_n_heads=cfg["index_n_heads"], index_head_dim=cfg["index_head_dim"], index_topk=cfg["index_topk"])
    return ModelConfig(
        attention=attention,
        hidden_size=cfg["dim"],
        num_attention_heads=cfg["n_heads"],
        num_key_value_heads=cfg["n_heads"],
        q_lora_rank=cfg["q_lora_rank"],
        kv_lora_rank=cfg["kv_lora_rank"],
        qk_nope_head_dim=cfg["qk_nope_head_dim"],
        qk_rope_head_dim=cfg["qk_rope_head_dim"],
        v_head_dim=cfg["v_head_dim"],
        rope_theta=cfg["rope_theta"],
        rms_norm_eps=cfg["norm_eps"],
        yarn=yarn,
        **extra,
    )


def load_mla(case: Case, attention: str) -> MultiHeadLatentAttention:
    model_cfg = mla_config(case.config, attention)
    layer = MultiHeadLatentAttention(model_cfg, with_indexer=attention == "dsa")
    assert abs(layer.scale - case.config["softmax_scale"]) < 1e-12
    names = {
        "wq": "q_proj.weight",
        "wq_a": "q_a_proj.weight",
        "q_norm": "q_a_layernorm.weight",
        "wq_b": "q_b_proj.weight",
        "wkv_a": "kv_a_proj_with_mqa.weight",
        "kv_norm": "kv_a_layernorm.weight",
        "wkv_b": "kv_b_proj.weight",
        "wo": "o_proj.weight",
        "idx_wq_b": "indexer.wq_b.weight",
        "idx_wk": "indexer.wk.weight",
        "idx_k_norm_w": "indexer.k_norm.weight",
        "idx_k_norm_b": "indexer.k_norm.bias",
        "idx_wproj": "indexer.weights_proj.weight",
    }
    state = {names[k]: case.weight(k) for k in case.manifest["weights"]}
    layer.load_state_dict(state, strict=True)
    return layer.eval()


@pytest.mark.parametrize("name", case_names(["mla", "dsa"]))
@pytest.mark.parametrize("absorbed", [False, True])
def test_mla_dsa(name: str, absorbed: bool) -> None:
    case = Case(name)
    attention = "dsa" if name.startswith("dsa") else "mla"
    layer = load_mla(case, attention)
    with torch.no_grad():
        y, present = layer(case.input("x_prefill"), absorbed=absorbed)
        case.check("y_prefill", y)
        if case.has("inputs", "x_step"):
            y_step, present = layer(case.input("x_step"), past=present, absorbed=absorbed)
            case.check("y_step", y_step)
        case.check("kv_cache", present[0])
        case.check("pe_cache", present[1])
        if attention == "dsa":
            case.check("index_k_cache", present[2])


@pytest.mark.parametrize("name", case_names(["dsa"]))
def test_dsa_indexer_scores_and_selection(name: str) -> None:
    case = Case(name)
    layer = load_mla(case, "dsa")
    indexer = layer.indexer
    assert indexer is not None
    x0 = case.input("x_prefill")
    steps = [("prefill", x0, 0)]
    if case.has("inputs", "x_step"):
        steps.append(("step", case.input("x_step"), x0.shape[1]))
    k_all = None
    with torch.no_grad():
        for label, x, start in steps:
            S = x.shape[1]
            cos, sin = layer.rotary(start, S)
            _, q_latent = layer.query(x, cos, sin)
            k_new = indexer.keys(x, cos, sin)
            k_all = k_new if k_all is None else torch.cat((k_all, k_new), dim=1)
            visible = causal_visibility(S, k_all.shape[1])
            index = indexer.scores(x, q_latent, k_all, cos, sin, visible)
            case.check(f"index_score_{label}", index)
            selected = indexer.select(index, visible)
            assert torch.equal(selected.float(), case.expected(f"selected_{label}")), f"selected_{label} differs"
            # min(top-k, visible) keys per query, never a masked one
            counts = selected.sum(-1)
            expected_counts = torch.clamp(torch.arange(start + 1, start + S + 1), max=case.config["index_topk"])
            assert torch.equal(counts, expected_counts.expand_as(counts))


def nsa_from_case(case: Case):
    cfg = case.config
    nsa = NsaConfig(
        block_length=cfg["cmp_block"],
        block_stride=cfg["cmp_stride"],
        select_block=cfg["slc_block"],
        num_selected=cfg["n_selected"],
        init_blocks=cfg["n_init"],
        local_blocks=cfg["n_local"],
        window=cfg["window"],
        phi=cfg["phi"],
        mlp_hidden=cfg.get("mlp_hidden"),
        pe_k=bool(cfg.get("pe_k")),
        pe_v=bool(cfg.get("pe_v")),
    )
    compressor = BlockCompressor(nsa, cfg["n_kv_heads"], cfg["head_dim"], cfg["v_head_dim"])
    names = {"pe_k": "pe_k", "pe_v": "pe_v"}
    for side in ("k", "v"):
        for part in ("w1", "b1", "w2", "b2"):
            names[f"cmp_{side}_{part}"] = f"{side}_{part}"
    state = {names[k]: case.weight(k) for k in case.manifest["weights"] if k in names}
    compressor.load_state_dict(state, strict=True)
    return nsa, compressor


@pytest.mark.parametrize("name", case_names(["nsa"]))
@pytest.mark.parametrize("fast", [False, True])
def test_nsa_every_stage(name: str, fast: bool) -> None:
    case = Case(name)
    nsa, compressor = nsa_from_case(case)
    x = case.input("x")
    gate_logits = x @ case.weight("w_gate").T + case.weight("b_gate")  # [B, S, 3H]
    with torch.no_grad():
        stages = nsa_attend(case.input("q"), case.input("k"), case.input("v"), gate_logits, compressor, nsa, case.config["scale"], fast=fast)
    case.check("k_cmp", stages.k_cmp)
    case.check("v_cmp", stages.v_cmp)
    case.check("block_scores", stages.block_scores)
    assert torch.equal(stages.selected_blocks.float(), case.expected("selected_blocks")), "selected_blocks differ"
    case.check("gates", stages.gates)
    case.check("o_cmp", stages.o_cmp)
    case.check("o_slc", stages.o_slc)
    case.check("o_win", stages.o_win)
    case.check("out", stages.out)


def test_fast_path_is_exercised_where_available() -> None:
    # on torch ≥ 2 `fast=True` above goes through SDPA; on torch 1.13 it falls back to the reference
    assert has_fused_sdpa() == hasattr(torch.nn.functional, "scaled_dot_product_attention")
