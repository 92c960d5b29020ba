// The four projections of an attention layer, picked out of a plain record of tensors. Accepted
// names, per projection p ∈ {q, k, v, o} (after an optional prefix such as
// `model.layers.0.self_attn.`):
//   weight: `wp`, `wp.weight` (attnkit / DeepSeek), `p_proj.weight`, `p_proj` (Hugging Face)
//   bias:   `bp`, `wp.bias`, `p_proj.bias`
// Weights are [out, in] as PyTorch stores them (y = x·Wᵀ + b) and may be stored f32, f16, bf16,
// int8 or fp8e4m3; biases are f32.

import { DTypeError, FormatError, ShapeError, type Tensor, formatShape } from '@attnkit/tensor-core';
import type { ProjectionName, ResolvedAttentionConfig } from './config.js';

export type AttentionWeightRecord = Readonly<Record<string, Tensor>>;

export interface Projection {
  /** [out, in] */
  readonly weight: Tensor;
  /** [out], or null */
  readonly bias: Tensor | null;
}

export type AttentionProjections = Readonly<Record<ProjectionName, Projection>>;

const WEIGHT_NAMES = (p: ProjectionName): string[] => [`w${p}`, `w${p}.weight`, `${p}_proj.weight`, `${p}_proj`];
const BIAS_NAMES = (p: ProjectionName): string[] => [`b${p}`, `w${p}.bias`, `${p}_proj.bias`];
/** Buffers some checkpoints keep beside the projections; the layer derives them itself. */
const IGNORED = new Set(['rotary_emb.inv_freq']);

export function loadProjections(fn: string, record: AttentionWeightRecord, c: ResolvedAttentionConfig, prefix = ''): AttentionProjections {
  const own = new Map<string, Tensor>();
  for (const [key, value] of Object.entries(record)) if (key.startsWith(prefix)) own.set(key.slice(prefix.length), value);
  const used = new Set<string>();
  const pick = (names: string[], what: string): Tensor | null => {
    const found = names.filter((n) => own.has(n));
    if (found.length > 1) throw new FormatError({ fn, expected: `one tensor for the ${what}`, got: found.map((n) => prefix + n).join(' and ') });
    const name = found[0];
    if (name === undefined) return null;
    used.add(name);
    return own.get(name) ?? null;
  };
  const shapes: Record<ProjectionName, [number, number]> = {
    q: [c.nHeads * c.headDim, c.dim],
    k: [c.nKvHeads * c.headDim, c.dim],
    v: [c.nKvHeads * c.vHeadDim, c.dim],
    o: [c.dim, c.nHeads * c.vHeadDim],
  };
  const load = (p: ProjectionName): Projection => {
    const [rows, cols] = shapes[p];
    const weight = pick(WEIGHT_NAMES(p), `${p} projection weight`);
    if (!weight) throw new FormatError({ fn, expected: `a ${p} projection weight named ${WEIGHT_NAMES(p).map((n) => prefix + n).join(' or ')}`, got: describeKeys(own, prefix) });
    weight.assertAlive(fn);
    if (weight.rank !== 2 || weight.shape[0] !== rows || weight.shape[1] !== cols) {
      throw new ShapeError({ fn, expected: `the ${p} projection weight of shape [${rows}, ${cols}]`, got: formatShape(weight.shape) });
    }
    if (weight.dtype === 'i32') throw new DTypeError({ fn, expected: `a float ${p} projection weight`, got: 'i32' });
    const bias = pick(BIAS_NAMES(p), `${p} projection bias`);
    const wanted = c.bias[p];
    if (wanted === true && !bias) throw new FormatError({ fn, expected: `a ${p} projection bias (config bias) named ${BIAS_NAMES(p).map((n) => prefix + n).join(' or ')}`, got: describeKeys(own, prefix) });
    if (wanted === false && bias) throw new FormatError({ fn, expected: `no ${p} projection bias (config bias is false)`, got: 'one in the record' });
    if (bias) {
      bias.assertAlive(fn);
      if (bias.dtype !== 'f32') throw new DTypeError({ fn, expected: `an f32 ${p} projection bias`, got: bias.dtype });
      if (bias.rank !== 1 || bias.shape[0] !== rows) throw new ShapeError({ fn, expected: `the ${p} projection bias of shape [${rows}]`, got: formatShape(bias.shape) });
    }
    return { weight, bias };
  };
  const projections = { q: load('q'), k: load('k'), v: load('v'), o: load('o') };
  const unknown = [...own.keys()].filter((k) => !used.has(k) && !IGNORED.has(k));
  if (unknown.length > 0) {
    throw new FormatError({ fn, expected: 'only q/k/v/o projection weights and biases in the record (wq, q_proj.weight, …)', got: `unknown ${unknown.map((k) => prefix + k).join(', ')}` });
  }
  return projections;
}

function describeKeys(own: Map<string, Tensor>, prefix: string): string {
  const keys = [...own.keys()].map((k) => prefix + k);
  return keys.length === 0 ? `no tensors${prefix ? ` under the prefix '${prefix}'` : ''}` : `the keys ${keys.join(', ')}`;
}
