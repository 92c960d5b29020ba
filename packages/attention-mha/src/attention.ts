import { type Tensor, tensor, throwIfAborted, ConfigError } from '@attnkit/tensor-core';
import { type HostBias, type KeySelector, attentionReference } from './reference.js';
import type { AttentionOptions, AttentionResult, BlockSparseAttentionOptions, SparseAttentionOptions } from './types.js';
import { type AttentionGeometry, biasShape4, validateAttention, validateIndexTensor } from './validate.js';

/**
 * Scaled dot-product attention, token-major: q [B, S, Hq, D], k [B, T, Hkv, D],
 * v [B, T, Hkv, Dv] → out [B, S, Hq, Dv]. Query head h reads kv head ⌊h / (Hq/Hkv)⌋ (MHA, GQA
 * and MQA in one), without copying K/V per head. Masks: bottom-right causal (default), none,
 * sliding window, per-sequence key lengths, an explicit additive bias.
 */
export async function attention(q: Tensor, k: Tensor, v: Tensor | null, options: AttentionOptions = {}): Promise<AttentionResult> {
  const g = validateAttention('attention', q, k, v, options);
  return run('attention', q, k, v, options, g, undefined);
}

/**
 * Attention restricted, per query and kv head, to the listed logical keys: indices i32
 * [B, S, Hkv|1, K], −1 for "no key" (the DSA top-k selection). Causality still applies.
 */
export async function sparseAttention(q: Tensor, k: Tensor, v: Tensor | null, indices: Tensor, options: SparseAttentionOptions = {}): Promise<AttentionResult> {
  const fn = 'sparseAttention';
  const g = validateAttention(fn, q, k, v, { ...options, mask: options.causal === false ? 'none' : 'causal' });
  validateIndexTensor(fn, 'indices', indices, g);
  const K = indices.shape[3] as number;
  const perHead = indices.shape[2] !== 1;
  const idx = await indices.dataInt();
  const select: KeySelector = (b, i, kvHead) => {
    const base = ((b * g.S + i) * (perHead ? g.Hkv : 1) + (perHead ? kvHead : 0)) * K;
    return idx.subarray(base, base + K);
  };
  return run(fn, q, k, v, options, g, select);
}

/**
 * Attention restricted to whole key blocks: blockIndices i32 [B, S, Hkv|1, n] name blocks of
 * `blockSize` keys (−1 for none), the NSA selection branch. Causality cuts the query's own block.
 */
export async function blockSparseAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor | null,
  blockIndices: Tensor,
  options: BlockSparseAttentionOptions,
): Promise<AttentionResult> {
  const fn = 'blockSparseAttention';
  const g = validateAttention(fn, q, k, v, { ...options, mask: options.causal === false ? 'none' : 'causal' });
  validateIndexTensor(fn, 'blockIndices', blockIndices, g);
  const { blockSize } = options;
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new ConfigError({ fn, expected: 'a positive integer blockSize', got: String(blockSize) });
  const n = blockIndices.shape[3] as number;
  const perHead = blockIndices.shape[2] !== 1;
  const idx = await blockIndices.dataInt();
  const select: KeySelector = (b, i, kvHead) => {
    const base = ((b * g.S + i) * (perHead ? g.Hkv : 1) + (perHead ? kvHead : 0)) * n;
    const keys: number[] = [];
    const seen = new Set<number>();
    for (let j = 0; j < n; j++) {
      const block = idx[base + j] as number;
      if (block < 0 || seen.has(block)) continue;
      seen.add(block);
      for (let t = block * blockSize; t < (block + 1) * blockSize; t++) keys.push(t);
    }
    return keys;
  };
  return run(fn, q, k, v, options, g, select);
}

async function run(
  fn: string,
  q: Tensor,
  k: Tensor,
  v: Tensor | null,
  options: AttentionOptions,
  g: AttentionGeometry,
  select: KeySelector | undefined,
): Promise<AttentionResult> {
  throwIfAborted(options.signal, fn);
  if (options.implementation === 'fused') {
    throw new ConfigError({ fn, expected: "implementation 'auto' or 'composed'", got: "'fused' (no fused kernel accepts these inputs on this backend)" });
  }
  const backend = q.backend;
  const [qh, kh, vh, rowMap, biasData] = await Promise.all([
    q.data(),
    k.data(),
    v ? v.data() : Promise.resolve(null),
    options.rowMap ? options.rowMap.dataInt() : Promise.resolve(null),
    options.bias ? options.bias.data() : Promise.resolve(null),
  ]);
  throwIfAborted(options.signal, fn);
  const bias: HostBias | null = options.bias && biasData ? { data: biasData, shape: biasShape4(options.bias) } : null;
  const { out, lse } = attentionReference(
    { q: qh, B: g.B, S: g.S, Hq: g.Hq },
    { k: kh, v: vh, Hkv: g.Hkv, D: g.D, Dv: g.Dv, T: g.T, rowMap, lengths: g.lengths },
    { scale: g.scale, causal: g.causal, window: g.window, sinkTokens: g.sinkTokens, bias, ...(select ? { select } : {}) },
  );
  const result: AttentionResult = {
    out: tensor(backend, out, [g.B, g.S, g.Hq, g.Dv]),
    ...(options.returnLse ? { lse: tensor(backend, lse, [g.B, g.S, g.Hq]) } : {}),
    dispatch: { implementation: 'reference-host', declined: 'no fused or composed kernel is registered yet' },
  };
  return result;
}
