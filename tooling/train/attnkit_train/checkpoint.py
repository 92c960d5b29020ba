"""Checkpoint folders (apps/reference-model/docs/checkpoint-format.md): config.json + model.safetensors."""

from __future__ import annotations

import json
import os
from typing import Dict, Optional

import torch

from . import safetensors_io
from .config import ModelConfig
from .model import CausalLM


def save_checkpoint(model: CausalLM, folder: str, dtype: torch.dtype = torch.float16, metadata: Optional[Dict[str, str]] = None) -> None:
    os.makedirs(folder, exist_ok=True)
    tensors = {name: t.detach().to("cpu", dtype) for name, t in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        tensors.pop("lm_head.weight", None)
    safetensors_io.save_file(tensors, os.path.join(folder, "model.safetensors"), {"format": "pt", **(metadata or {})})
    dtype_name = {torch.float16: "float16", torch.float32: "float32", torch.bfloat16: "bfloat16"}[dtype]
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(model.config.to_hf_config(torch_dtype=dtype_name), f, indent=2)
        f.write("\n")


def load_checkpoint(folder: str, device: str = "cpu") -> CausalLM:
    """Loads any supported folder (ours or a Hugging Face one) into a float32 model."""
    with open(os.path.join(folder, "config.json")) as f:
        cfg = ModelConfig.from_hf_config(json.load(f))
    tensors = safetensors_io.load_file(os.path.join(folder, "model.safetensors"))
    model = CausalLM(cfg)
    expected = set(model.state_dict())
    if cfg.tie_word_embeddings:
        expected.discard("lm_head.weight")
    got = set(tensors)
    if expected != got:
        raise ValueError(f"[load_checkpoint] {folder}: missing {sorted(expected - got)}, unexpected {sorted(got - expected)}")
    state = {name: t.float() for name, t in tensors.items()}
    if cfg.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state)
    return model.to(device).eval()
