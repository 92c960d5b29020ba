"""Validation loss, expected logits for the TypeScript parity test, selection margins, samples."""

from __future__ import annotations

import copy
import json
import math
import os
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F

from . import safetensors_io
from .model import CausalLM

# The fixed prompts of expected_logits: the first one whose top-k / top-n selections all stand
# clear of float32 rounding is used (a near-tie could flip between PyTorch and TypeScript).
# 160 bytes: past DSA's top-64 and NSA's window of 64 and first complete selection blocks.
PROMPTS = [
    # a validation-split fortune: the most float32-stable of ~90 candidates for the trained DSA model
    b"The big question is why in the course of evolution the males permitted\nthemselves to be so "
    b"totally eclipsed by the females.  Why do they tolerate\nthis total sub",
    b"The best way to predict the future is to invent it.  A computer lets you make more mistakes "
    b"faster than any invention in human history, with the possible exception of",
    b"Q: How many programmers does it take to change a light bulb?\nA: None, that's a hardware "
    b"problem.\n%\nAll the world's a stage, and all the men and women merely players.",
    b"There are two ways of constructing a software design: one way is to make it so simple that "
    b"there are obviously no deficiencies, and the other way is to make it so complicated.",
    b"It was a dark and stormy night; the rain fell in torrents, except at occasional intervals, "
    b"when it was checked by a violent gust of wind which swept up the streets.",
    b"Love is an ideal thing, marriage a real thing; a confusion of the real with the ideal never "
    b"goes unpunished.  Never put off till tomorrow what you can do today, unless.",
    b"Real programmers don't comment their code.  If it was hard to write, it should be hard to "
    b"understand.  Debugging is twice as hard as writing the code in the first place.",
]
PROMPT_LENGTH = 160
MIN_GAP_OVER_ERROR = 50.0


def write_json(obj: dict, path: str) -> None:
    """One top-level key per line, each value on one line (long number lists stay compact)."""
    lines = [f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in obj.items()]
    with open(path, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")


@torch.no_grad()
def validation_loss(model: CausalLM, data: torch.Tensor, context: int, batch: int = 16) -> float:
    """Mean next-byte NLL (nats) over the whole split, in windows of `context` predictions."""
    model.eval()
    device = next(model.parameters()).device
    starts = list(range(0, len(data) - 1, context))
    total, count = 0.0, 0
    full = [s for s in starts if s + context + 1 <= len(data)]
    tail = [s for s in starts if s + context + 1 > len(data)]
    for i in range(0, len(full), batch):
        idx = torch.tensor(full[i : i + batch])[:, None] + torch.arange(context + 1)[None, :]
        chunk = data[idx].to(device=device, dtype=torch.long)
        logits, _ = model(chunk[:, :-1])
        total += float(F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1), reduction="sum"))
        count += chunk[:, 1:].numel()
    for s in tail:
        chunk = data[s:].to(device=device, dtype=torch.long)[None]
        if chunk.shape[1] < 2:
            continue
        logits, _ = model(chunk[:, :-1])
        total += float(F.cross_entropy(logits.float()[0], chunk[0, 1:], reduction="sum"))
        count += chunk.shape[1] - 1
    return total / count


def _attention_modules(model: CausalLM) -> List[torch.nn.Module]:
    return [layer.self_attn for layer in model.model.layers if hasattr(layer.self_attn, "trace")]


def _traces(model: CausalLM, ids: torch.Tensor) -> List[list]:
    """Runs `ids` once and returns, per sparse layer, its (ranked scores, picks) records."""
    mods = _attention_modules(model)
    traces: List[list] = []
    for m in mods:
        m.trace = []
        traces.append(m.trace)
    try:
        model(ids)
    finally:
        for m in mods:
            m.trace = None
    return [t for t in traces if t]


def _boundaries(ranked: torch.Tensor, n: int):
    """Yields (row, gap) for each row whose choice matters (more candidates than picks): the gap
    between the n-th and (n+1)-th ranked score (+inf when the n-th is forced)."""
    rows = ranked.reshape(-1, ranked.shape[-1])
    ordered = rows.sort(dim=-1, descending=True).values
    candidates = (rows > float("-inf")).sum(-1)
    for r in range(rows.shape[0]):
        c = int(candidates[r])
        k = min(n, c)
        if c > k:
            yield r, float(ordered[r, k - 1] - ordered[r, k]), ordered[r, :c]


@torch.no_grad()
def selection_margins(model: CausalLM, ids: torch.Tensor) -> Optional[Dict[str, float]]:
    """Smallest top-k / top-n boundary gap of every sparse layer on `ids`, absolute and relative to
    the row's finite score range (None for a dense model)."""
    traces = _traces(model, ids)
    if not traces:
        return None
    best_abs, best_rel = math.inf, math.inf
    for trace in traces:
        for ranked, n in trace:
            for _, gap, scores in _boundaries(ranked.float(), n):
                finite = scores[torch.isfinite(scores)]
                spread = float(finite.max() - finite.min()) if finite.numel() else 0.0
                best_abs = min(best_abs, gap)
                best_rel = min(best_rel, gap / spread if spread > 0 else math.inf)
    return {"min_gap": best_abs, "min_relative_gap": best_rel}


def _selected(ranked: torch.Tensor, n: int) -> torch.Tensor:
    picks = ranked.topk(min(n, ranked.shape[-1]), dim=-1).indices
    return torch.zeros_like(ranked, dtype=torch.bool).scatter_(-1, picks, True) & (ranked > float("-inf"))


@torch.no_grad()
def selection_stability(model: CausalLM, ids: torch.Tensor) -> Optional[Dict[str, object]]:
    """Is every top-k / top-n choice far from float32 rounding? Runs the model in float32 and in
    float64 and returns, over the rows where the choice matters, the smallest ratio of the float64
    boundary gap to that row's float32 score error, and whether both precisions pick the same
    sets. A large ratio means a float32 implementation of the same math selects the same keys."""
    t32 = _traces(model, ids)
    if not t32:
        return None
    t64 = _traces(copy.deepcopy(model).double(), ids)
    ratio, same = math.inf, True
    for layer32, layer64 in zip(t32, t64):
        for (r32, n), (r64, _) in zip(layer32, layer64):
            r32 = r32.double().reshape(-1, r32.shape[-1])
            r64 = r64.reshape(-1, r64.shape[-1])
            same = same and bool(torch.equal(_selected(r32, n), _selected(r64, n)))
            finite = torch.isfinite(r64)
            err = torch.where(finite, (r32 - r64).abs(), torch.zeros_like(r64)).amax(-1)
            for r, gap, _ in _boundaries(r64, n):
                ratio = min(ratio, gap / max(float(err[r]), 1e-30))
    return {"min_gap_over_float32_error": ratio, "same_selection_in_float64": same}


@torch.no_grad()
def expected_logits(model: CausalLM, folder: str, prompts: Sequence[bytes] = PROMPTS) -> dict:
    """float32 CPU logits of every position of a fixed prompt → expected_logits.safetensors."""
    model = model.to("cpu").float().eval()
    # the first prompt whose selections stand well clear of float32 rounding, else the most stable
    scored = []
    for prompt in prompts:
        ids = torch.tensor(list(prompt[:PROMPT_LENGTH]), dtype=torch.long)[None]
        found = selection_stability(model, ids)
        scored.append((prompt[:PROMPT_LENGTH], found))
        if found is None or (found["same_selection_in_float64"] and found["min_gap_over_float32_error"] >= MIN_GAP_OVER_ERROR):
            break
    chosen, stability = max(scored, key=lambda item: math.inf if item[1] is None else float(item[1]["min_gap_over_float32_error"]))
    ids = torch.tensor(list(chosen), dtype=torch.long)[None]
    margins = selection_margins(model, ids)
    logits, _ = model(ids)
    logits = logits[0].float()  # [S, V]
    exact = copy.deepcopy(model).double()(ids)[0][0]  # the same weights in float64 arithmetic
    safetensors_io.save_file(
        {"input_ids": ids[0].to(torch.int32), "logits": logits.contiguous()},
        os.path.join(folder, "expected_logits.safetensors"),
        {"format": "pt", "what": "float32 logits of every position of input_ids, from the float16 weights upcast to float32"},
    )
    info = {
        "prompt": chosen.decode("utf-8"),
        "input_ids": ids[0].tolist(),
        "file": "expected_logits.safetensors",
        "tensors": {"input_ids": "I32 [S]", "logits": "F32 [S, vocab]: logits[i] predicts byte i+1"},
        "computed_with": f"PyTorch {torch.__version__}, float32 on CPU, weights = model.safetensors (float16) upcast to float32, prefill from position 0",
        "tolerance": {"max_abs_error": 1e-3},
        "float32_vs_float64_max_abs_error": float((logits.double() - exact).abs().max()),
        "last_position_logits": [round(float(v), 6) for v in logits[-1]],
        "argmax_next_bytes": bytes(int(v) for v in logits.argmax(-1)).decode("latin-1"),
    }
    if margins is not None and stability is not None:
        info["selection_margins"] = margins
        info["selection_stability"] = stability
        # a boundary this close to float32 rounding may select differently in another implementation
        info["selection_near_tie"] = not (stability["same_selection_in_float64"] and stability["min_gap_over_float32_error"] >= MIN_GAP_OVER_ERROR)
    return info


@torch.no_grad()
def sample(model: CausalLM, prompt: bytes, length: int, temperature: float = 0.8, top_k: int = 40, seed: int = 0) -> bytes:
    """Autoregressive sampling through the KV cache (prefill, then one token per step)."""
    model.eval()
    device = next(model.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    ids = torch.tensor(list(prompt), dtype=torch.long, device=device)[None]
    logits, past = model(ids)
    out = bytearray(prompt)
    for _ in range(length):
        last = logits[0, -1].float().cpu() / temperature
        kth = last.topk(top_k).values[-1]
        probs = torch.softmax(last.masked_fill(last < kth, float("-inf")), dim=-1)
        nxt = int(torch.multinomial(probs, 1, generator=gen))
        out.append(nxt)
        logits, past = model(torch.tensor([[nxt]], device=device), past=past)
    return bytes(out)


def main() -> None:
    """python3 -m attnkit_train.evaluate FOLDER... — rewrites expected_logits.* of checkpoint folders."""
    import argparse

    from .checkpoint import load_checkpoint

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("folders", nargs="+")
    args = ap.parse_args()
    for folder in args.folders:
        info = expected_logits(load_checkpoint(folder), folder)
        write_json(info, os.path.join(folder, "expected_logits.json"))
        print(folder, json.dumps({k: info.get(k) for k in ("selection_stability", "selection_near_tie")}), info["prompt"][:40].encode())


if __name__ == "__main__":
    main()
