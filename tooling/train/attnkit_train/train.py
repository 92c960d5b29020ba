"""Trains one variant on the byte corpus and writes its checkpoint folder.

    python3 -m attnkit_train.train --variant mha --data data --out runs/fortunes-mha --steps 1500

Every variant gets the same budget: `steps` optimizer steps of `batch` × `context` bytes drawn in
the same order (one seed for the data stream), AdamW (β 0.9/0.95, weight decay 0.1 on matrices),
linear warm-up then cosine decay, gradient clipping at 1.

MLA+DSA follows the DeepSeek-V3.2 recipe inside the same step budget:
  1. dense stage — the first `dsa_dense_fraction` of the steps train plain MLA (indexer idle; the
     shared weights start from exactly the MLA run's initialisation);
  2. dense warm-up — `dsa_warmup_fraction` of the steps train ONLY the indexer, everything else
     frozen, to match the head-mean dense attention distribution by KL (the LM takes no step
     here, so DSA's main model gets that many fewer LM updates than the others);
  3. sparse stage — the rest train the main model on the LM loss with top-k attention, and the
     indexer on KL over the selected keys, its inputs detached from the LM graph.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from typing import Dict, List

import numpy as np
import torch
import torch.nn.functional as F

from .checkpoint import load_checkpoint, save_checkpoint
from .evaluate import expected_logits, sample, validation_loss, write_json
from .model import CausalLM, count_parameters
from .variants import CONTEXT, VARIANTS


def lr_at(step: int, total: int, peak: float, warmup: int, floor_ratio: float = 0.1) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (floor_ratio + (1 - floor_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def make_optimizer(params: List[torch.nn.Parameter], names: List[str], lr: float, device: torch.device) -> torch.optim.Optimizer:
    decay = [p for p, n in zip(params, names) if p.dim() >= 2 and ".compress.pe_" not in n]
    no_decay = [p for p, n in zip(params, names) if not (p.dim() >= 2 and ".compress.pe_" not in n)]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    kwargs = {"fused": True} if device.type == "cuda" and int(torch.__version__.split(".")[0]) >= 2 else {}
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95), **kwargs)


def load_split(folder: str, name: str) -> torch.Tensor:
    return torch.from_numpy(np.fromfile(os.path.join(folder, name), dtype=np.uint8).astype(np.int64))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", required=True, choices=sorted(VARIANTS))
    ap.add_argument("--data", required=True, help="folder with train.bin, val.bin, corpus.json (attnkit_train.data)")
    ap.add_argument("--out", required=True, help="checkpoint folder to write")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--context", type=int, default=CONTEXT)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--dsa-dense-fraction", type=float, default=0.4)
    ap.add_argument("--dsa-warmup-fraction", type=float, default=0.05)
    ap.add_argument("--indexer-lr", type=float, default=1e-3)
    ap.add_argument("--val-bytes", type=int, default=0, help="evaluate on this prefix of the validation split (0: all; for smoke tests)")
    ap.add_argument("--sample-bytes", type=int, default=300)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    cfg = VARIANTS[args.variant].with_(max_position_embeddings=args.context)
    train_data = load_split(args.data, "train.bin").to(device)
    val_data = load_split(args.data, "val.bin")
    if args.val_bytes:
        val_data = val_data[: args.val_bytes]
    model = CausalLM(cfg)
    model.init_weights(args.seed)
    model.to(device)

    is_dsa = cfg.attention == "dsa"
    dense_end = int(round(args.steps * args.dsa_dense_fraction)) if is_dsa else args.steps
    warm_end = dense_end + int(round(args.steps * args.dsa_warmup_fraction)) if is_dsa else args.steps
    main_named = [(n, p) for n, p in model.named_parameters() if ".indexer." not in n]
    main_opt = make_optimizer([p for _, p in main_named], [n for n, _ in main_named], args.lr, device)
    idx_named = [(n, p) for n, p in model.named_parameters() if ".indexer." in n]
    idx_opt = make_optimizer([p for _, p in idx_named], [n for n, _ in idx_named], args.indexer_lr, device) if idx_named else None

    data_gen = torch.Generator().manual_seed(args.seed)  # same byte stream for every variant
    history: List[Dict[str, float]] = []
    stage = None
    t0 = time.time()
    lm_updates = 0
    for step in range(args.steps):
        new_stage = "dense" if step < dense_end else ("warmup" if step < warm_end else "sparse")
        if not is_dsa:
            new_stage = "main"
        if new_stage != stage:
            stage = new_stage
            if is_dsa:
                model.set_dsa_mode(stage)
                for _, p in main_named:
                    p.requires_grad_(stage != "warmup")
                for _, p in idx_named:
                    p.requires_grad_(stage != "dense")
            print(f"[{args.variant}] step {step}: stage {stage}", flush=True)
        starts = torch.randint(0, len(train_data) - args.context - 1, (args.batch,), generator=data_gen)
        idx = starts[:, None] + torch.arange(args.context + 1)[None, :]
        chunk = train_data[idx.to(device)]
        x, y = chunk[:, :-1], chunk[:, 1:]
        model.train()
        aux: Dict[str, list] = {}
        logits, _ = model(x, aux=aux if is_dsa and stage != "dense" else None)
        lm_loss = F.cross_entropy(logits.float().reshape(-1, cfg.vocab_size), y.reshape(-1))
        kl = torch.stack(aux["indexer_kl"]).mean() if aux.get("indexer_kl") else None

        main_lr = lr_at(step, args.steps, args.lr, args.warmup)
        if stage == "warmup":
            loss = kl
        elif stage == "sparse":
            loss = lm_loss + kl  # disjoint graphs: LM → main weights, KL → indexer
        else:
            loss = lm_loss
        main_opt.zero_grad(set_to_none=True)
        if idx_opt is not None:
            idx_opt.zero_grad(set_to_none=True)
        loss.backward()
        if stage != "warmup":
            torch.nn.utils.clip_grad_norm_([p for _, p in main_named], 1.0)
            for g in main_opt.param_groups:
                g["lr"] = main_lr
            main_opt.step()
            lm_updates += 1
        if idx_opt is not None and stage in ("warmup", "sparse"):
            torch.nn.utils.clip_grad_norm_([p for _, p in idx_named], 1.0)
            idx_lr = args.indexer_lr if stage == "warmup" else args.indexer_lr * main_lr / args.lr
            for g in idx_opt.param_groups:
                g["lr"] = idx_lr
            idx_opt.step()

        if step % 50 == 0 or step == args.steps - 1:
            row = {"step": step, "lm_loss": float(lm_loss), "lr": main_lr, "elapsed_s": round(time.time() - t0, 2)}
            if kl is not None:
                row["indexer_kl"] = float(kl)
            if (step % args.eval_every == 0 and step > 0) or step == args.steps - 1:
                row["val_loss_subset"] = validation_loss(model, val_data[: 64 * args.context + 1], args.context)
            history.append(row)
            print(json.dumps({"variant": args.variant, **row}), flush=True)
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_seconds = time.time() - t0

    # the shipped weights are float16: evaluate exactly those (upcast to float32)
    save_checkpoint(model, args.out, torch.float16)
    shipped = load_checkpoint(args.out, device=str(device))
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    val_f32 = validation_loss(model, val_data, args.context)
    val_f16 = validation_loss(shipped, val_data, args.context)
    train_subset = validation_loss(shipped, train_data[: len(val_data)].cpu(), args.context)
    text = sample(shipped, b"%\n", args.sample_bytes, seed=1).decode("utf-8", errors="replace")
    logits_info = expected_logits(shipped, args.out)
    write_json(logits_info, os.path.join(args.out, "expected_logits.json"))
    log = {
        "variant": args.variant,
        "model_type": cfg.model_type,
        "parameters": count_parameters(model),
        "kv_elements_per_token_per_layer": cfg.kv_elements_per_token(),
        "layers": cfg.num_hidden_layers,
        "args": vars(args),
        "tokens_seen": args.steps * args.batch * args.context,
        "lm_updates": lm_updates,
        "dsa_stages": {"dense_steps": dense_end, "warmup_steps": warm_end - dense_end, "sparse_steps": args.steps - warm_end} if is_dsa else None,
        "train_seconds": round(train_seconds, 1),
        "val_loss_nats": val_f16,
        "val_bits_per_byte": val_f16 / math.log(2),
        "val_loss_nats_float32_weights": val_f32,
        "train_prefix_loss_nats": train_subset,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "max_gpu_memory_mib": round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "sample": text,
        "history": history,
    }
    with open(os.path.join(args.out, "training_log.json"), "w") as f:
        json.dump(log, f, indent=1)
        f.write("\n")
    print(json.dumps({k: log[k] for k in ("variant", "parameters", "val_loss_nats", "val_bits_per_byte", "train_seconds")}), flush=True)


if __name__ == "__main__":
    main()
