// The weights of one MLA layer, found under DeepSeek's names (`wq_a`, `wkv_b`, …) or Hugging
// Face's (`q_a_proj.weight`, `kv_b_proj.weight`, …) and checked against the config. Both
// checkpoints store every matrix as [out, in] with the same row order (per head [nope | rope]
// for queries, [k_nope | v] for wkv_b), so one set of math serves both. HF's `rope_interleave`
// permutes the rope channels of q and k alike at run time; that changes its cached keys, not
// its weights or outputs (spec §2).

import {
  type Backend,
  BackendError,
  ConfigError,
  DTypeError,
  type DType,
  ShapeError,
  type Tensor,
  formatShape,
} from '@attnkit/tensor-core';
import type { ResolvedMLAConfig } from './config.js';

/** How the query is projected: directly (`qLoraRank` 0) or through the query latent. */
export type MLAQueryWeights =
  | { readonly kind: 'direct'; /** [H(dn+dr), dim] */ readonly wq: Tensor }
  | {
      readonly kind: 'lora';
      /** [Cq, dim] */
      readonly wqA: Tensor;
      /** RMSNorm weight [Cq] */
      readonly qNorm: Tensor;
      /** [H(dn+dr), Cq] */
      readonly wqB: Tensor;
    };

export interface MLAWeights {
  readonly query: MLAQueryWeights;
  /** `[C+dr, dim]`: the latent and the shared rope key in one projection. */
  readonly wkvA: Tensor;
  /** RMSNorm weight [C], applied to the latent before it is cached. */
  readonly kvNorm: Tensor;
  /** `[H(dn+dv), C]`: rows of head h are W_UK[h] (dn rows) then W_UV[h] (dv rows). */
  readonly wkvB: Tensor;
  /** [dim, H·dv] */
  readonly wo: Tensor;
}

type Slot = 'wq' | 'wqA' | 'qNorm' | 'wqB' | 'wkvA' | 'kvNorm' | 'wkvB' | 'wo';

/** Each weight's name in DeepSeek's `inference/model.py` and in transformers' `DeepseekV3Attention`. */
export const MLA_WEIGHT_NAMES: Readonly<Record<Slot, { readonly deepseek: string; readonly huggingface: string }>> = Object.freeze({
  wq: { deepseek: 'wq', huggingface: 'q_proj' },
  wqA: { deepseek: 'wq_a', huggingface: 'q_a_proj' },
  qNorm: { deepseek: 'q_norm', huggingface: 'q_a_layernorm' },
  wqB: { deepseek: 'wq_b', huggingface: 'q_b_proj' },
  wkvA: { deepseek: 'wkv_a', huggingface: 'kv_a_proj_with_mqa' },
  kvNorm: { deepseek: 'kv_norm', huggingface: 'kv_a_layernorm' },
  wkvB: { deepseek: 'wkv_b', huggingface: 'kv_b_proj' },
  wo: { deepseek: 'wo', huggingface: 'o_proj' },
});

const SLOTS: readonly Slot[] = ['wq', 'wqA', 'qNorm', 'wqB', 'wkvA', 'kvNorm', 'wkvB', 'wo'];
const LINEAR_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'int8', 'fp8e4m3'];
const NORM_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

export interface MLAWeightRecordOptions {
  /** Common prefix of the layer's keys, e.g. `layers.3.attn.` or `model.layers.3.self_attn.`. Keys without it are ignored. */
  readonly prefix?: string;
}

/**
 * Picks the layer's weights out of a name → tensor record (DeepSeek or Hugging Face names, with
 * or without a `.weight` suffix). Every key under the prefix must be one of the layer's weights,
 * each weight must appear once, and the query weights must match `qLoraRank`.
 */
export function mlaWeightsFromRecord(record: Readonly<Record<string, Tensor>>, config: ResolvedMLAConfig, options: MLAWeightRecordOptions = {}): MLAWeights {
  const fn = 'mlaWeightsFromRecord';
  const prefix = options.prefix ?? '';
  const found = new Map<Slot, { key: string; tensor: Tensor }>();
  const unknown: string[] = [];
  for (const [key, tensor] of Object.entries(record)) {
    if (!key.startsWith(prefix)) continue;
    const name = key.slice(prefix.length).replace(/\.weight$/, '');
    const slot = SLOTS.find((s) => MLA_WEIGHT_NAMES[s].deepseek === name || MLA_WEIGHT_NAMES[s].huggingface === name);
    if (!slot) {
      unknown.push(key);
      continue;
    }
    const previous = found.get(slot);
    if (previous) throw new ConfigError({ fn, expected: `one tensor for ${describeSlot(slot)}`, got: `both "${previous.key}" and "${key}"` });
    found.set(slot, { key, tensor });
  }
  if (unknown.length > 0) {
    const known = SLOTS.map((s) => `${MLA_WEIGHT_NAMES[s].deepseek} / ${MLA_WEIGHT_NAMES[s].huggingface}`).join(', ');
    throw new ConfigError({ fn, expected: `only MLA weights under prefix "${prefix}" (${known})`, got: unknown.map((k) => `"${k}"`).join(', ') });
  }
  const take = (slot: Slot): Tensor => {
    const entry = found.get(slot);
    if (!entry) {
      const present = [...found.values()].map((e) => `"${e.key}"`).join(', ') || 'none';
      throw new ConfigError({ fn, expected: `a weight ${describeSlot(slot, prefix)}`, got: `none (found ${present})` });
    }
    return entry.tensor;
  };
  const lora = config.qLoraRank > 0;
  const wrongQuery: Slot[] = lora ? ['wq'] : ['wqA', 'qNorm', 'wqB'];
  for (const slot of wrongQuery) {
    if (found.has(slot)) {
      throw new ConfigError({
        fn,
        expected: lora ? `wq_a / q_norm / wq_b since qLoraRank is ${config.qLoraRank}` : 'a plain wq (q_proj) since qLoraRank is 0',
        got: `"${found.get(slot)?.key}"`,
      });
    }
  }
  const query: MLAQueryWeights = lora ? { kind: 'lora', wqA: take('wqA'), qNorm: take('qNorm'), wqB: take('wqB') } : { kind: 'direct', wq: take('wq') };
  const weights: MLAWeights = { query, wkvA: take('wkvA'), kvNorm: take('kvNorm'), wkvB: take('wkvB'), wo: take('wo') };
  return weights;
}

/**
 * Checks every weight's shape and dtype against the config, and that all live on `backend`.
 * Throws ShapeError naming the config fields a wrong dimension comes from.
 */
export function validateMLAWeights(fn: string, weights: MLAWeights, config: ResolvedMLAConfig, backend: Backend): void {
  const { dim, nHeads: H, qLoraRank: Cq, kvLoraRank: C, qkNopeHeadDim: dn, qkRopeHeadDim: dr, vHeadDim: dv } = config;
  const check = (slot: Slot, t: Tensor, shape: readonly number[], formula: string, dtypes: readonly DType[]): void => {
    t.assertAlive(fn);
    if (t.backend !== backend) {
      throw new BackendError({ fn, expected: `${describeSlot(slot)} on ${backend.info.name}`, got: `a tensor on ${t.backend.info.name}` });
    }
    if (!dtypes.includes(t.dtype)) throw new DTypeError({ fn, expected: `${describeSlot(slot)} of dtype ${dtypes.join('/')}`, got: t.dtype });
    if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ShapeError({ fn, expected: `${describeSlot(slot)} of shape ${formula} = ${formatShape(shape)}`, got: formatShape(t.shape) });
    }
  };
  const q = weights.query;
  if (q.kind === 'direct') {
    if (Cq !== 0) throw new ConfigError({ fn, expected: `wq_a / q_norm / wq_b since qLoraRank is ${Cq}`, got: 'a plain wq' });
    check('wq', q.wq, [H * (dn + dr), dim], '[nHeads·(qkNopeHeadDim+qkRopeHeadDim), dim]', LINEAR_DTYPES);
  } else {
    if (Cq === 0) throw new ConfigError({ fn, expected: 'a plain wq since qLoraRank is 0', got: 'wq_a / q_norm / wq_b' });
    check('wqA', q.wqA, [Cq, dim], '[qLoraRank, dim]', LINEAR_DTYPES);
    check('qNorm', q.qNorm, [Cq], '[qLoraRank]', NORM_DTYPES);
    check('wqB', q.wqB, [H * (dn + dr), Cq], '[nHeads·(qkNopeHeadDim+qkRopeHeadDim), qLoraRank]', LINEAR_DTYPES);
  }
  check('wkvA', weights.wkvA, [C + dr, dim], '[kvLoraRank+qkRopeHeadDim, dim]', LINEAR_DTYPES);
  check('kvNorm', weights.kvNorm, [C], '[kvLoraRank]', NORM_DTYPES);
  check('wkvB', weights.wkvB, [H * (dn + dv), C], '[nHeads·(qkNopeHeadDim+vHeadDim), kvLoraRank]', LINEAR_DTYPES);
  check('wo', weights.wo, [dim, H * dv], '[dim, nHeads·vHeadDim]', LINEAR_DTYPES);
}

/** Every tensor of the weights, for disposal. */
export function weightTensors(weights: MLAWeights): Tensor[] {
  const q = weights.query;
  const query = q.kind === 'direct' ? [q.wq] : [q.wqA, q.qNorm, q.wqB];
  return [...query, weights.wkvA, weights.kvNorm, weights.wkvB, weights.wo];
}

function describeSlot(slot: Slot, prefix = ''): string {
  const n = MLA_WEIGHT_NAMES[slot];
  return `"${prefix}${n.deepseek}" (HF "${prefix}${n.huggingface}.weight")`;
}
