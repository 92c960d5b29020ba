// Every tensor a checkpoint of a given config holds, with its shape: docs/checkpoint-format.md
// as code. Hugging Face names throughout (`model.layers.{i}.self_attn.q_proj.weight`, …).

import type { ModelConfig } from './config.js';

export interface TensorSpec {
  readonly shape: readonly number[];
  /** May be absent (a tied head's `lm_head.weight`). */
  readonly optional?: boolean;
}

/** Buffers some exporters save beside the weights; the model derives them itself. */
export function isIgnoredTensor(name: string): boolean {
  return name.endsWith('.rotary_emb.inv_freq');
}

export const layerPrefix = (i: number): string => `model.layers.${i}.`;
export const attentionPrefix = (i: number): string => `model.layers.${i}.self_attn.`;

export function expectedTensors(c: ModelConfig): Map<string, TensorSpec> {
  const specs = new Map<string, TensorSpec>();
  const add = (name: string, shape: readonly number[], optional = false): void => {
    specs.set(name, optional ? { shape, optional } : { shape });
  };
  add('model.embed_tokens.weight', [c.vocabSize, c.dim]);
  add('model.norm.weight', [c.dim]);
  add('lm_head.weight', [c.vocabSize, c.dim], c.tieWordEmbeddings);
  for (let i = 0; i < c.nLayers; i++) {
    const l = layerPrefix(i);
    add(`${l}input_layernorm.weight`, [c.dim]);
    add(`${l}post_attention_layernorm.weight`, [c.dim]);
    add(`${l}mlp.gate_proj.weight`, [c.intermediateSize, c.dim]);
    add(`${l}mlp.up_proj.weight`, [c.intermediateSize, c.dim]);
    add(`${l}mlp.down_proj.weight`, [c.dim, c.intermediateSize]);
    attentionTensors(c, attentionPrefix(i), add);
  }
  return specs;
}

function attentionTensors(c: ModelConfig, a: string, add: (name: string, shape: readonly number[]) => void): void {
  if (c.mla) {
    const { nHeads: H, qLoraRank: Cq, kvLoraRank: C, qkHeadDim, qkRopeHeadDim: dr, qkNopeHeadDim: dn, vHeadDim: dv } = c.mla;
    if (Cq > 0) {
      add(`${a}q_a_proj.weight`, [Cq, c.dim]);
      add(`${a}q_a_layernorm.weight`, [Cq]);
      add(`${a}q_b_proj.weight`, [H * qkHeadDim, Cq]);
    } else {
      add(`${a}q_proj.weight`, [H * qkHeadDim, c.dim]);
    }
    add(`${a}kv_a_proj_with_mqa.weight`, [C + dr, c.dim]);
    add(`${a}kv_a_layernorm.weight`, [C]);
    add(`${a}kv_b_proj.weight`, [H * (dn + dv), C]);
    add(`${a}o_proj.weight`, [c.dim, H * dv]);
    if (c.dsa) {
      const { indexNHeads: HI, indexHeadDim: DI } = c.dsa;
      add(`${a}indexer.wq_b.weight`, [HI * DI, Cq]);
      add(`${a}indexer.wk.weight`, [DI, c.dim]);
      add(`${a}indexer.k_norm.weight`, [DI]);
      add(`${a}indexer.k_norm.bias`, [DI]);
      add(`${a}indexer.weights_proj.weight`, [HI, c.dim]);
    }
    return;
  }
  const { nHeads: H, nKvHeads: Hkv, headDim: D } = c;
  const rows = { q: H * D, k: Hkv * D, v: Hkv * D };
  for (const [p, out] of Object.entries(rows)) {
    add(`${a}${p}_proj.weight`, [out, c.dim]);
    if (c.attentionBias) add(`${a}${p}_proj.bias`, [out]);
  }
  add(`${a}o_proj.weight`, [c.dim, H * D]);
  if (c.attentionBias) add(`${a}o_proj.bias`, [c.dim]);
  if (!c.nsa) return;
  const { cmpBlock: l } = c.nsa;
  add(`${a}gate_proj.weight`, [3 * H, c.dim]);
  add(`${a}gate_proj.bias`, [3 * H]);
  if (c.nsaPositionEncodings.key) add(`${a}compress.pe_k`, [Hkv, l, D]);
  if (c.nsaPositionEncodings.value) add(`${a}compress.pe_v`, [Hkv, l, D]);
  if (c.nsaMlpHidden !== null) {
    const hidden = c.nsaMlpHidden;
    for (const side of ['k', 'v']) {
      add(`${a}compress.${side}_w1`, [hidden, l * D]);
      add(`${a}compress.${side}_b1`, [hidden]);
      add(`${a}compress.${side}_w2`, [D, hidden]);
      add(`${a}compress.${side}_b2`, [D]);
    }
  }
}
