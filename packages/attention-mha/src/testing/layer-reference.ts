// A plain host implementation of the projected attention layer (float64 attention, f32
// projections and RoPE from tensor-core's reference kernels), and random weights for it, so
// layer tests compare against something that shares no code path with the layer itself.

import { type Backend, type Tensor, reference, ropeInvFreq, tensor } from '@attnkit/tensor-core';
import type { ResolvedAttentionConfig } from '../layer/config.js';
import { attentionReference } from '../reference.js';
import type { RandomSource } from './random-problem.js';

export interface HostLayerWeights {
  readonly wq: Float32Array;
  readonly wk: Float32Array;
  readonly wv: Float32Array;
  readonly wo: Float32Array;
  readonly bq: Float32Array | null;
  readonly bk: Float32Array | null;
  readonly bv: Float32Array | null;
  readonly bo: Float32Array | null;
}

/**
 * y [B, S, dim] for x [B, S, dim] attending over `prefix` keys/values already computed (or
 * none) plus its own, token s of sequence b at position starts[b] + s.
 */
export function layerReference(x: Float32Array, B: number, S: number, c: ResolvedAttentionConfig, w: HostLayerWeights, starts: readonly number[]): Float32Array {
  const { dim, nHeads: Hq, nKvHeads: Hkv, headDim: D, vHeadDim: Dv } = c;
  const project = (input: Float32Array, rows: number, inF: number, weight: Float32Array, bias: Float32Array | null, outF: number): Float32Array => {
    const out = new Float32Array(rows * outF);
    reference.linearRows(input, rows, inF, outF, (o) => weight.subarray(o * inF, (o + 1) * inF), bias, out);
    return out;
  };
  let q = project(x, B * S, dim, w.wq, w.bq, Hq * D);
  let k = project(x, B * S, dim, w.wk, w.bk, Hkv * D);
  const v = project(x, B * S, dim, w.wv, w.bv, Hkv * Dv);
  if (c.rope) {
    const inv = ropeInvFreq({ dim: c.rope.width, theta: c.rope.theta, yarn: c.rope.yarn });
    const at = (b: number, s: number): number => (starts[b] as number) + s;
    const rotate = (t: Float32Array, H: number): Float32Array => {
      const out = new Float32Array(t.length);
      reference.ropeApply(t, B, S, H, D, at, inv, c.rope?.layout ?? 'halfsplit', c.rope?.offset ?? 0, c.rope?.width ?? D, out);
      return out;
    };
    q = rotate(q, Hq);
    k = rotate(k, Hkv);
  }
  const { out } = attentionReference(
    { q, B, S, Hq },
    { k, v, Hkv, D, Dv, T: S, rowMap: null, lengths: new Array<number>(B).fill(S) },
    { scale: c.scale, causal: c.causal, window: c.window, bias: null },
  );
  return project(out, B * S, Hq * Dv, w.wo, w.bo, dim);
}

export type WeightNaming = 'attnkit' | 'deepseek' | 'huggingface';

/** Random projections for a config: host copies and a record of tensors named in one convention. */
export function randomLayerWeights(
  backend: Backend,
  c: ResolvedAttentionConfig,
  rng: RandomSource,
  options: { naming?: WeightNaming; prefix?: string; bias?: Partial<Record<'q' | 'k' | 'v' | 'o', boolean>> } = {},
): { host: HostLayerWeights; record: Record<string, Tensor>; dispose(): void } {
  const { dim, nHeads: Hq, nKvHeads: Hkv, headDim: D, vHeadDim: Dv } = c;
  const mat = (rows: number, cols: number): Float32Array => rng.normalArray(rows * cols, 1 / Math.sqrt(cols));
  const vec = (n: number, on: boolean | undefined): Float32Array | null => (on ? rng.normalArray(n, 0.1) : null);
  const host: HostLayerWeights = {
    wq: mat(Hq * D, dim),
    wk: mat(Hkv * D, dim),
    wv: mat(Hkv * Dv, dim),
    wo: mat(dim, Hq * Dv),
    bq: vec(Hq * D, options.bias?.q),
    bk: vec(Hkv * D, options.bias?.k),
    bv: vec(Hkv * Dv, options.bias?.v),
    bo: vec(dim, options.bias?.o),
  };
  const naming = options.naming ?? 'attnkit';
  const prefix = options.prefix ?? '';
  const names = (p: string): [string, string] =>
    naming === 'attnkit' ? [`w${p}`, `b${p}`] : naming === 'deepseek' ? [`w${p}.weight`, `w${p}.bias`] : [`${p}_proj.weight`, `${p}_proj.bias`];
  const record: Record<string, Tensor> = {};
  const shapes = { q: [Hq * D, dim], k: [Hkv * D, dim], v: [Hkv * Dv, dim], o: [dim, Hq * Dv] } as const;
  for (const p of ['q', 'k', 'v', 'o'] as const) {
    const [wName, bName] = names(p);
    record[prefix + wName] = tensor(backend, host[`w${p}`], shapes[p]);
    const b = host[`b${p}`];
    if (b) record[prefix + bName] = tensor(backend, b, [shapes[p][0]]);
  }
  return { host, record, dispose: () => Object.values(record).forEach((t) => t.dispose()) };
}
