// The configuration of a projected attention layer (MHA, GQA, MQA), with its defaults resolved
// and checked once, at construction.

import { ConfigError, type RopeLayout, type YarnConfig, yarnSoftmaxScale } from '@attnkit/tensor-core';

/** Rotary position embedding of the query and key heads. */
export interface RopeSettings {
  /** Pair layout: `halfsplit` (i, i + w/2) as in Llama / GPT-NeoX, or `interleaved` (2i, 2i+1) as in GPT-J / DeepSeek MLA. */
  readonly layout: RopeLayout;
  /** Base θ of the frequencies θ^(−2i/w). Default 10000. */
  readonly theta?: number;
  /** DeepSeek-style YaRN frequency interpolation; also multiplies the default softmax scale by mscale². Default none. */
  readonly yarn?: YarnConfig | null;
  /** Rotated channels per head (even): partial rotary as in GPT-NeoX's `rotary_pct`. Default headDim − offset. */
  readonly width?: number;
  /** First rotated channel of each head. Default 0. */
  readonly offset?: number;
}

export interface AttentionLayerConfig {
  /** Model width: the layer maps x [B, S, dim] → y [B, S, dim]. */
  readonly dim: number;
  /** Query heads Hq. */
  readonly nHeads: number;
  /** Key/value heads Hkv, dividing nHeads (GQA; 1 is MQA). Default nHeads (MHA). */
  readonly nKvHeads?: number;
  /** Query/key head dim D. Default dim / nHeads. */
  readonly headDim?: number;
  /** Value head dim Dv. Default headDim. */
  readonly vHeadDim?: number;
  /**
   * Which projections carry a bias: one flag for all four, or per projection (Qwen2: q, k, v
   * but not o). Default: whatever the weight record holds.
   */
  readonly bias?: boolean | { readonly q?: boolean; readonly k?: boolean; readonly v?: boolean; readonly o?: boolean };
  /** Rotary embedding, or `'none'` (default) for none. */
  readonly rope?: 'none' | RopeSettings;
  /** Softmax scale. Default headDim^−1/2, times YaRN's mscale² when `rope.yarn` is set. */
  readonly scale?: number;
  /** Bottom-right causal mask (default) or none (encoders). */
  readonly causal?: boolean;
  /** Sliding window in keys per query, the query included (Mistral: 4096). Default none. */
  readonly window?: number;
}

export type ProjectionName = 'q' | 'k' | 'v' | 'o';

export interface ResolvedRope {
  readonly layout: RopeLayout;
  readonly theta: number;
  readonly yarn: YarnConfig | null;
  readonly width: number;
  readonly offset: number;
}

export interface ResolvedAttentionConfig {
  readonly dim: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly vHeadDim: number;
  /** Per projection: true / false when configured, undefined to follow the weights. */
  readonly bias: Readonly<Record<ProjectionName, boolean | undefined>>;
  readonly rope: ResolvedRope | null;
  readonly scale: number;
  readonly causal: boolean;
  readonly window: number | null;
}

export function resolveAttentionConfig(fn: string, config: AttentionLayerConfig): ResolvedAttentionConfig {
  const bad = (expected: string, got: unknown): never => {
    throw new ConfigError({ fn, expected, got: describeValue(got) });
  };
  const positiveInt = (name: string, x: unknown): number => (Number.isInteger(x) && Number(x) > 0 ? Number(x) : bad(`${name} to be a positive integer`, x));
  const dim = positiveInt('dim', config.dim);
  const nHeads = positiveInt('nHeads', config.nHeads);
  const nKvHeads = positiveInt('nKvHeads', config.nKvHeads ?? nHeads);
  if (nHeads % nKvHeads !== 0) bad(`nHeads (${nHeads}) to be a multiple of nKvHeads`, nKvHeads);
  if (config.headDim === undefined && dim % nHeads !== 0) bad(`dim (${dim}) divisible by nHeads (${nHeads}), or an explicit headDim`, `headDim undefined`);
  const headDim = positiveInt('headDim', config.headDim ?? dim / nHeads);
  const vHeadDim = positiveInt('vHeadDim', config.vHeadDim ?? headDim);

  const b = config.bias;
  const bias =
    b === undefined || typeof b === 'boolean'
      ? { q: b, k: b, v: b, o: b }
      : { q: b.q ?? false, k: b.k ?? false, v: b.v ?? false, o: b.o ?? false };

  let rope: ResolvedRope | null = null;
  const r = config.rope ?? 'none';
  if (r !== 'none') {
    if (r.layout !== 'interleaved' && r.layout !== 'halfsplit') bad("rope.layout 'interleaved' or 'halfsplit'", r.layout);
    const offset = r.offset ?? 0;
    if (!Number.isInteger(offset) || offset < 0 || offset >= headDim) bad(`rope.offset in [0, ${headDim})`, offset);
    const width = r.width ?? headDim - offset;
    if (!Number.isInteger(width) || width <= 0 || width % 2 !== 0 || offset + width > headDim) {
      bad(`rope.width even, positive, and offset + width ≤ headDim (${headDim})`, width);
    }
    const theta = r.theta ?? 10000;
    if (!(theta > 1) || !Number.isFinite(theta)) bad('rope.theta > 1', theta);
    rope = { layout: r.layout, theta, yarn: r.yarn ?? null, width, offset };
  }

  const scale = config.scale ?? yarnSoftmaxScale(rope?.yarn) / Math.sqrt(headDim);
  if (!Number.isFinite(scale) || scale <= 0) bad('a positive finite scale', scale);
  const window = config.window ?? null;
  if (window !== null && (!Number.isInteger(window) || window < 1)) bad('window ≥ 1 keys', window);
  const causal = config.causal ?? true;
  if (window !== null && !causal) bad('a causal layer when a window is set', 'causal: false');
  return { dim, nHeads, nKvHeads, headDim, vHeadDim, bias, rope, scale, causal, window };
}

/** A config value in an error message. */
export function describeValue(x: unknown): string {
  if (typeof x === 'string') return x;
  if (typeof x === 'number' || typeof x === 'boolean' || typeof x === 'bigint' || x === undefined || x === null) return String(x);
  return JSON.stringify(x) ?? typeof x;
}
