import { BackendError, ConfigError, DTypeError, ShapeError, type Tensor, formatShape } from '@attnkit/tensor-core';
import type { AttentionOptions } from './types.js';

export interface AttentionGeometry {
  readonly B: number;
  readonly S: number;
  readonly Hq: number;
  readonly D: number;
  readonly Hkv: number;
  readonly Dv: number;
  /** Logical keys per sequence in the layout (T, or Tmax of the row map). */
  readonly T: number;
  readonly lengths: readonly number[];
  readonly scale: number;
  readonly causal: boolean;
  readonly window: number | null;
  readonly sinkTokens: number;
}

const KV_DTYPES = ['f32', 'f16', 'bf16', 'int8', 'fp8e4m3'] as const;
const IMPLEMENTATIONS = ['auto', 'fused', 'composed', 'reference'] as const;

/** Checks q/k/v/options of every attention entry point and derives the sizes. */
export function validateAttention(fn: string, q: Tensor, k: Tensor, v: Tensor | null, options: AttentionOptions, causalDefault = true): AttentionGeometry {
  for (const t of [q, k, v, options.bias, options.rowMap]) {
    if (!t) continue;
    t.assertAlive(fn);
    if (t.backend !== q.backend) throw new BackendError({ fn, expected: `every tensor on ${q.backend.info.name}`, got: `one on ${t.backend.info.name}` });
  }
  if (q.backend.isDisposed) throw new BackendError({ fn, expected: 'a live backend', got: `${q.backend.info.name} after dispose()` });
  if (q.dtype !== 'f32') throw new DTypeError({ fn, expected: 'q of dtype f32', got: q.dtype });
  if (!KV_DTYPES.some((d) => d === k.dtype)) throw new DTypeError({ fn, expected: `k of dtype ${KV_DTYPES.join('/')}`, got: k.dtype });
  if (v && !KV_DTYPES.some((d) => d === v.dtype)) throw new DTypeError({ fn, expected: `v of dtype ${KV_DTYPES.join('/')}`, got: v.dtype });
  if (q.rank !== 4) throw new ShapeError({ fn, expected: 'q of shape [B, S, Hq, D]', got: formatShape(q.shape) });
  const [B, S, Hq, D] = q.shape as readonly [number, number, number, number];
  if (Hq < 1 || D < 1) throw new ShapeError({ fn, expected: 'q with at least one head and one channel per head', got: formatShape(q.shape) });

  const rowMap = options.rowMap ?? null;
  let T: number;
  let Hkv: number;
  if (rowMap) {
    if (rowMap.dtype !== 'i32') throw new DTypeError({ fn, expected: 'an i32 rowMap', got: rowMap.dtype });
    if (rowMap.rank !== 2 || rowMap.shape[0] !== B) throw new ShapeError({ fn, expected: `rowMap of shape [${B}, Tmax]`, got: formatShape(rowMap.shape) });
    if (k.rank !== 3) throw new ShapeError({ fn, expected: 'k as a row pool [R, Hkv, D] when a rowMap is given', got: formatShape(k.shape) });
    T = rowMap.shape[1] as number;
    Hkv = k.shape[1] as number;
  } else {
    if (k.rank !== 4 || k.shape[0] !== B) throw new ShapeError({ fn, expected: `k of shape [${B}, T, Hkv, ${D}]`, got: formatShape(k.shape) });
    T = k.shape[1] as number;
    Hkv = k.shape[2] as number;
  }
  if (k.shape[k.rank - 1] !== D) throw new ShapeError({ fn, expected: `k's head dim to equal q's (${D})`, got: formatShape(k.shape) });
  if (Hkv < 1 || Hq % Hkv !== 0) {
    throw new ShapeError({ fn, expected: `query heads (${Hq}) to be a multiple of key/value heads`, got: `${Hkv} kv heads` });
  }

  let Dv: number;
  if (v) {
    if (v.rank !== k.rank || v.shape.slice(0, -1).some((d, i) => d !== k.shape[i])) {
      throw new ShapeError({ fn, expected: `v shaped like k ${formatShape(k.shape)} except its last axis`, got: formatShape(v.shape) });
    }
    Dv = v.shape[v.rank - 1] as number;
    if (Dv < 1) throw new ShapeError({ fn, expected: 'v with at least one channel per head', got: formatShape(v.shape) });
  } else {
    const valueDim = options.valueDim;
    if (valueDim === undefined || !Number.isInteger(valueDim) || valueDim < 1 || valueDim > D) {
      throw new ConfigError({ fn, expected: `valueDim in [1, ${D}] when v is null (values read from the keys)`, got: String(valueDim) });
    }
    Dv = valueDim;
  }

  const lengths = options.kvLengths ?? new Array<number>(B).fill(T);
  if (lengths.length !== B) throw new ShapeError({ fn, expected: `kvLengths of ${B} entries`, got: String(lengths.length) });
  const mask = options.mask ?? (causalDefault ? 'causal' : 'none');
  if (mask !== 'causal' && mask !== 'none') throw new ConfigError({ fn, expected: "mask 'causal' or 'none'", got: String(mask) });
  const causal = mask === 'causal';
  for (const [b, len] of lengths.entries()) {
    if (!Number.isInteger(len) || len < 0 || len > T) throw new ShapeError({ fn, expected: `kvLengths[${b}] in [0, ${T}]`, got: String(len) });
    if (causal && len < S) {
      throw new ShapeError({ fn, expected: `at least as many keys as queries under a causal mask (sequence ${b}: ${S} queries)`, got: `${len} keys` });
    }
  }

  const scale = options.scale ?? 1 / Math.sqrt(D);
  if (!Number.isFinite(scale)) throw new ConfigError({ fn, expected: 'a finite softmax scale', got: String(scale) });
  const window = options.window ?? null;
  if (window !== null) {
    if (!Number.isInteger(window) || window < 1) throw new ConfigError({ fn, expected: 'a sliding window of ≥ 1 keys', got: String(window) });
    if (!causal) throw new ConfigError({ fn, expected: 'a causal mask with a sliding window', got: "mask: 'none'" });
  }

  const sinkTokens = options.sinkTokens ?? 0;
  if (!Number.isInteger(sinkTokens) || sinkTokens < 0 || (sinkTokens > 0 && window === null)) {
    throw new ConfigError({ fn, expected: 'sinkTokens ≥ 0, used together with a window', got: `${sinkTokens} (window ${window})` });
  }
  const implementation = options.implementation ?? 'auto';
  if (!IMPLEMENTATIONS.some((i) => i === implementation)) {
    throw new ConfigError({ fn, expected: `implementation ${IMPLEMENTATIONS.map((i) => `'${i}'`).join(', ')}`, got: String(implementation) });
  }
  const bias = options.bias;
  if (bias) {
    if (bias.dtype !== 'f32') throw new DTypeError({ fn, expected: 'an f32 bias', got: bias.dtype });
    if (bias.rank < 2 || bias.rank > 4) {
      throw new ShapeError({ fn, expected: 'a bias of shape [S, T], [B, S, T] or [B, Hq, S, T]', got: formatShape(bias.shape) });
    }
    const full = [B, Hq, S, T];
    const shape = bias.rank === 3 ? [bias.shape[0], 1, bias.shape[1], bias.shape[2]] : [...new Array<number>(4 - bias.rank).fill(1), ...bias.shape];
    if (shape.some((d, i) => d !== 1 && d !== full[i])) {
      throw new ShapeError({ fn, expected: `a bias that broadcasts to [B, Hq, S, T] = ${formatShape(full)}`, got: formatShape(bias.shape) });
    }
  }
  return { B, S, Hq, D, Hkv, Dv, T, lengths, scale, causal, window, sinkTokens };
}

/** The bias as a 4-D broadcast shape [B|1, Hq|1, S|1, T|1]. */
export function biasShape4(bias: Tensor): [number, number, number, number] {
  const s = bias.shape;
  if (bias.rank === 3) return [s[0] ?? 1, 1, s[1] ?? 1, s[2] ?? 1];
  if (bias.rank === 2) return [1, 1, s[0] ?? 1, s[1] ?? 1];
  return [s[0] ?? 1, s[1] ?? 1, s[2] ?? 1, s[3] ?? 1];
}

/** i32 [B, S, Hkv|1, K] key (or block) indices. */
export function validateIndexTensor(fn: string, name: string, indices: Tensor, g: AttentionGeometry, q: Tensor): void {
  indices.assertAlive(fn);
  if (indices.backend !== q.backend) throw new BackendError({ fn, expected: `${name} on ${q.backend.info.name}`, got: `a tensor on ${indices.backend.info.name}` });
  if (indices.dtype !== 'i32') throw new DTypeError({ fn, expected: `${name} of dtype i32`, got: indices.dtype });
  const [b, s, h] = indices.shape;
  if (indices.rank !== 4 || b !== g.B || s !== g.S || (h !== g.Hkv && h !== 1)) {
    throw new ShapeError({ fn, expected: `${name} of shape [${g.B}, ${g.S}, ${g.Hkv} or 1, K]`, got: formatShape(indices.shape) });
  }
}
