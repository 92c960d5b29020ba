"""Model-level checks: caches, checkpoints, configs, the DSA training losses, the corpus split."""

from __future__ import annotations

import json
import os

import pytest
import torch

from attnkit_train import safetensors_io
from attnkit_train.checkpoint import load_checkpoint, save_checkpoint
from attnkit_train.config import ModelConfig, NsaConfig
from attnkit_train.data import is_validation, records
from attnkit_train.evaluate import selection_margins
from attnkit_train.model import CausalLM
from attnkit_train.variants import VARIANTS

TRUNK = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=128)
TINY = dict(head_dim=8, **TRUNK)
TINY_MLA = dict(q_lora_rank=16, kv_lora_rank=16, qk_nope_head_dim=8, qk_rope_head_dim=8, v_head_dim=8)
CONFIGS = {
    "mha": ModelConfig(attention="mha", num_key_value_heads=4, **TINY),
    "gqa": ModelConfig(attention="gqa", num_key_value_heads=2, **TINY),
    "mqa": ModelConfig(attention="mqa", num_key_value_heads=1, **TINY),
    "mla": ModelConfig(attention="mla", num_key_value_heads=4, **TINY_MLA, **TRUNK),
    "mla-no-qlora": ModelConfig(attention="mla", num_key_value_heads=4, **{**TINY_MLA, "q_lora_rank": 0}, **TRUNK),
    "dsa": ModelConfig(attention="dsa", num_key_value_heads=4, index_n_heads=8, index_head_dim=16, index_topk=6, **TINY_MLA, **TRUNK),
    "nsa": ModelConfig(
        attention="nsa",
        num_key_value_heads=2,
        nsa=NsaConfig(block_length=8, block_stride=4, select_block=8, num_selected=3, init_blocks=1, local_blocks=1, window=8),
        **TINY,
    ),
}


def tiny_model(name: str, seed: int = 0) -> CausalLM:
    model = CausalLM(CONFIGS[name])
    model.init_weights(seed)
    with torch.no_grad():  # larger than the training init so every path moves the logits
        for n, p in model.named_parameters():
            if p.dim() >= 2 or ".compress.pe_" in n:
                p.mul_(10)
            elif n.endswith("bias"):
                p.normal_(0, 0.5)
    return model.eval()


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_cache_decode_matches_full_prefill(name: str) -> None:
    model = tiny_model(name)
    ids = torch.randint(0, 256, (2, 40), generator=torch.Generator().manual_seed(1))
    margins = selection_margins(model, ids)
    # top-k ties are implementation-defined (spec §3): the comparison needs clear selections
    assert margins is None or margins["min_relative_gap"] > 1e-4, margins
    with torch.no_grad():
        full, _ = model(ids)
        logits, past = model(ids[:, :17])  # prefill
        steps = [logits]
        logits, past = model(ids[:, 17:23], past=past)  # a chunk at start_pos 17
        steps.append(logits)
        for t in range(23, 40):  # then one token at a time
            logits, past = model(ids[:, t : t + 1], past=past)
            steps.append(logits)
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_checkpoint_round_trip(tmp_path, name: str) -> None:
    model = tiny_model(name)
    save_checkpoint(model, str(tmp_path), torch.float16)
    with open(tmp_path / "config.json") as f:
        cfg = json.load(f)
    assert cfg["model_type"] == CONFIGS[name].model_type
    assert ModelConfig.from_hf_config(cfg) == CONFIGS[name]
    loaded = load_checkpoint(str(tmp_path))
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value.half().float()), key


def test_safetensors_layout(tmp_path) -> None:
    tensors = {"b": torch.arange(6, dtype=torch.float32).reshape(2, 3), "a": torch.tensor([1.5, -2.0], dtype=torch.float16), "c": torch.tensor([1, 2, 3], dtype=torch.int32)}
    path = str(tmp_path / "x.safetensors")
    safetensors_io.save_file(tensors, path, {"format": "pt"})
    raw = open(path, "rb").read()
    n = int.from_bytes(raw[:8], "little")
    assert (8 + n) % 8 == 0
    header = json.loads(raw[8 : 8 + n])
    assert header["__metadata__"] == {"format": "pt"}
    assert header["a"] == {"dtype": "F16", "shape": [2], "data_offsets": [0, 4]}
    back = safetensors_io.load_file(path)
    for k, v in tensors.items():
        assert back[k].dtype == v.dtype and torch.equal(back[k], v)


def test_dsa_with_large_topk_is_dense_mla() -> None:
    dsa = tiny_model("dsa")
    mla = CausalLM(CONFIGS["mla"]).eval()
    mla.load_state_dict({k: v for k, v in dsa.state_dict().items() if ".indexer." not in k})
    for layer in dsa.model.layers:
        layer.self_attn.indexer.topk = 1000
    ids = torch.randint(0, 256, (1, 30), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.allclose(dsa(ids)[0], mla(ids)[0], atol=1e-5)
        for layer in dsa.model.layers:
            layer.self_attn.indexer.topk = 6
        assert not torch.allclose(dsa(ids)[0], mla(ids)[0], atol=1e-3)  # sparsity changes the output


@pytest.mark.parametrize("mode", ["warmup", "sparse"])
def test_dsa_indexer_learns_only_from_its_kl(mode: str) -> None:
    model = tiny_model("dsa").train()
    model.set_dsa_mode(mode)
    ids = torch.randint(0, 256, (2, 24), generator=torch.Generator().manual_seed(3))
    aux: dict = {}
    logits, _ = model(ids, aux=aux)
    assert len(aux["indexer_kl"]) == CONFIGS["dsa"].num_hidden_layers
    kl = torch.stack(aux["indexer_kl"]).mean()
    assert torch.isfinite(kl) and kl >= 0
    kl.backward(retain_graph=True)
    assert all(p.grad is None or float(p.grad.abs().max()) == 0 for p in model.main_parameters())
    assert any(p.grad is not None and float(p.grad.abs().max()) > 0 for p in model.indexer_parameters())
    model.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(logits.reshape(-1, 256), ids.reshape(-1)).backward()
    assert all(p.grad is None or float(p.grad.abs().max()) == 0 for p in model.indexer_parameters())


def test_trained_variants_have_sparsity_at_the_training_context() -> None:
    dsa, nsa = VARIANTS["dsa"], VARIANTS["nsa"]
    assert dsa.index_topk < dsa.max_position_embeddings
    assert nsa.nsa is not None
    per_query = nsa.nsa.num_selected * nsa.nsa.select_block + nsa.nsa.window
    assert per_query < nsa.max_position_embeddings


def test_corpus_records_and_split() -> None:
    raw = b"first one\n%\nsecond\nline\n%\n%\nthird\n"
    assert records(raw) == [b"first one", b"second\nline", b"third"]
    share = sum(is_validation(str(i).encode()) for i in range(20000)) / 20000
    assert 0.04 < share < 0.06


def test_committed_checkpoints_reproduce_their_expected_logits() -> None:
    """Every committed checkpoint loads and reproduces its own expected logits (float32, CPU)."""
    root = os.path.join(os.path.dirname(__file__), "..", "..", "..", "apps", "reference-model", "checkpoints")
    folders = [os.path.join(root, d) for d in sorted(os.listdir(root)) if os.path.isfile(os.path.join(root, d, "config.json"))]
    assert folders
    for folder in folders:
        model = load_checkpoint(folder)
        expected = safetensors_io.load_file(os.path.join(folder, "expected_logits.safetensors"))
        with torch.no_grad():
            got = model(expected["input_ids"].long()[None])[0][0]
        assert float((got - expected["logits"]).abs().max()) < 1e-4, folder
