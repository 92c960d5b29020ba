// The MultiHeadAttention layer on every backend: prefill against a host oracle for each config
// option, weight naming conventions, decode and chunked prefill through a cache equal to one
// full prefill (contiguous and paged caches, sequences at different positions), bad configs
// and records, and no leaks.
import { ConfigError, FormatError, ShapeError, type Tensor, tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { compareArrays, describeEachBackend, SeededRandom } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import { ContiguousKVCache, type KVCache, PagePool, PagedKVCache, SlidingWindowKVCache } from '@attnkit/kvcache';
import { HostCache } from '../testing/host-cache.js';
import { type WeightNaming, layerReference, randomLayerWeights } from '../testing/layer-reference.js';
import type { MultiHeadAttentionConfig } from './multi-head-attention.js';
import { MultiHeadAttention } from './multi-head-attention.js';
import { resolveAttentionConfig } from './config.js';

const TOLERANCE = { atol: 2e-5, rtol: 2e-4 };
const { available } = await availableBackends();

const CONFIGS: { name: string; config: MultiHeadAttentionConfig; bias?: Partial<Record<'q' | 'k' | 'v' | 'o', boolean>>; naming?: WeightNaming; prefix?: string }[] = [
  { name: 'plain, no rope', config: { dim: 16, nHeads: 4 } },
  { name: 'halfsplit rope, all biases, HF names under a prefix', config: { dim: 24, nHeads: 3, rope: { layout: 'halfsplit' } }, bias: { q: true, k: true, v: true, o: true }, naming: 'huggingface', prefix: 'model.layers.3.self_attn.' },
  { name: 'interleaved partial rope at an offset, D ≠ Dv, DeepSeek names', config: { dim: 20, nHeads: 2, headDim: 12, vHeadDim: 6, rope: { layout: 'interleaved', offset: 4, width: 6, theta: 500 } }, naming: 'deepseek' },
  { name: 'YaRN rope (scale gains mscale²), q/k/v biases only', config: { dim: 32, nHeads: 2, rope: { layout: 'halfsplit', yarn: { factor: 8, originalSeqLen: 16, betaFast: 32, betaSlow: 1 } } }, bias: { q: true, k: true, v: true } },
  { name: 'sliding window of 3 and a custom scale', config: { dim: 16, nHeads: 2, window: 3, scale: 0.3, rope: { layout: 'halfsplit' } } },
  { name: 'non-causal encoder', config: { dim: 12, nHeads: 3, causal: false } },
];

describeEachBackend(available, (name) => `MultiHeadAttention on ${name}`, (getBackend) => {
  for (const [index, { name, config, bias, naming, prefix }] of CONFIGS.entries()) {
    it(`prefill matches the host oracle: ${name}`, async () => {
      const backend = getBackend();
      const rng = new SeededRandom(900 + index);
      const before = backend.memory();
      const resolved = resolveAttentionConfig('test', { ...config, nKvHeads: config.nHeads });
      const weights = randomLayerWeights(backend, resolved, rng, { naming, prefix, bias });
      const [B, S] = [2, 7];
      const xh = rng.normalArray(B * S * config.dim);
      const starts = [0, 5];
      const layer = new MultiHeadAttention(config, weights.record, { prefix });
      using x = tensor(backend, xh, [B, S, config.dim]);
      using y = await layer.forward(x, { startPositions: starts });
      const cmp = compareArrays(await y.data(), layerReference(xh, B, S, resolved, weights.host, starts), TOLERANCE);
      expect(cmp.pass, cmp.message).toBe(true);
      weights.dispose();
      x.dispose();
      y.dispose();
      expect(backend.memory().liveTensors).toBe(before.liveTensors);
      expect(backend.memory().liveBuffers).toBe(before.liveBuffers);
    });
  }

  interface CacheKind {
    name: string;
    /** A window for the layer (and the cache) when the cache is a sliding window. */
    window?: number;
    make: (B: number, Hkv: number, D: number, Dv: number) => { cache: KVCache; release: () => void };
    tolerance: { atol: number; rtol: number };
  }
  const own = (cache: KVCache): { cache: KVCache; release: () => void } => ({ cache, release: () => cache.dispose() });
  const CACHES: CacheKind[] = [
    { name: 'ContiguousKVCache (f32, growing by 4)', make: (B, kvHeads, keyDim, valueDim) => own(new ContiguousKVCache(getBackend(), { batchSize: B, kvHeads, keyDim, valueDim, step: 4 })), tolerance: TOLERANCE },
    {
      name: 'PagedKVCache (pages of 3 rows)',
      make: (B, kvHeads, keyDim, valueDim) => {
        const pool = new PagePool(getBackend(), { kvHeads, keyDim, valueDim, pageSize: 3, numPages: 16 });
        const cache = new PagedKVCache(pool, { batchSize: B });
        return { cache, release: () => (cache.dispose(), pool.dispose()) };
      },
      tolerance: TOLERANCE,
    },
    {
      name: 'SlidingWindowKVCache (window 4) under a window-4 layer',
      window: 4,
      make: (B, kvHeads, keyDim, valueDim) => own(new SlidingWindowKVCache(getBackend(), { batchSize: B, kvHeads, keyDim, valueDim, window: 4, maxChunk: 4 })),
      tolerance: TOLERANCE,
    },
    { name: 'a paged host cache (row map)', make: (B) => own(new HostCache(B, { paged: true })), tolerance: TOLERANCE },
    // f16 storage rounds each cached value (relative 2⁻¹¹): the outputs stay within a few 1e-3
    { name: 'ContiguousKVCache storing f16', make: (B, kvHeads, keyDim, valueDim) => own(new ContiguousKVCache(getBackend(), { batchSize: B, kvHeads, keyDim, valueDim, dtype: 'f16' })), tolerance: { atol: 5e-3, rtol: 5e-3 } },
  ];
  for (const [ci, cacheKind] of CACHES.entries()) {
    it(`decode token by token and chunked prefill through ${cacheKind.name} equal one full prefill`, async () => {
      const backend = getBackend();
      const rng = new SeededRandom(30 + ci);
      const config: MultiHeadAttentionConfig = { dim: 24, nHeads: 4, headDim: 8, vHeadDim: 5, rope: { layout: 'interleaved' }, bias: true, ...(cacheKind.window ? { window: cacheKind.window } : {}) };
      const resolved = resolveAttentionConfig('test', { ...config, nKvHeads: 4 });
      const weights = randomLayerWeights(backend, resolved, rng, { bias: { q: true, k: true, v: true, o: true } });
      const layer = new MultiHeadAttention(config, weights.record);
      const [B, N] = [2, 11];
      const xh = rng.normalArray(B * N * config.dim);
      using x = tensor(backend, xh, [B, N, config.dim]);
      using full = await layer.forward(x);
      const expected = await full.data();
      const before = backend.memory();

      // prefill 4, then 1, 1, then a chunk of 3, then 1, 1: positions come from the cache
      const { cache, release } = cacheKind.make(B, 4, 8, 5);
      const pieces: Float32Array[] = [];
      let t = 0;
      for (const n of [4, 1, 1, 3, 1, 1]) {
        using xi = tensor(backend, sliceTokens(xh, B, N, config.dim, t, n), [B, n, config.dim]);
        using yi = await layer.forward(xi, { cache });
        pieces.push(await yi.data());
        t += n;
      }
      expect(cache.lengths).toEqual([N, N]);
      const stepwise = joinTokens(pieces, B, config.dim);
      release();
      const cmp = compareArrays(stepwise, expected, cacheKind.tolerance);
      expect(cmp.pass, cmp.message).toBe(true);
      expect(backend.memory().liveTensors).toBe(before.liveTensors);
      weights.dispose();
    });
  }

  it('decodes sequences sitting at different positions (per-sequence cache lengths)', async () => {
    const backend = getBackend();
    const rng = new SeededRandom(44);
    const config: MultiHeadAttentionConfig = { dim: 16, nHeads: 2, rope: { layout: 'halfsplit' } };
    const resolved = resolveAttentionConfig('test', { ...config, nKvHeads: 2 });
    const weights = randomLayerWeights(backend, resolved, rng);
    const layer = new MultiHeadAttention(config, weights.record);
    const [B, N] = [2, 9];
    const xh = rng.normalArray(B * N * config.dim);
    using cache = new HostCache(B, { paged: true });
    using x = tensor(backend, xh, [B, N, config.dim]);
    using _prefill = await layer.forward(x, { cache });
    cache.truncate([N, N - 3]); // sequence 1 rolls back 3 tokens (a rejected speculation)
    const next = rng.normalArray(B * config.dim);
    using step = tensor(backend, next, [B, 1, config.dim]);
    using y = await layer.forward(step, { cache });
    const got = await y.data();
    expect(cache.lengths).toEqual([N + 1, N - 2]);
    for (let b = 0; b < B; b++) {
      const kept = b === 0 ? N : N - 3;
      // the sequence as it now stands: its first `kept` tokens, then the new one
      const seq = new Float32Array((kept + 1) * config.dim);
      seq.set(xh.subarray(b * N * config.dim, (b * N + kept) * config.dim));
      seq.set(next.subarray(b * config.dim, (b + 1) * config.dim), kept * config.dim);
      const want = layerReference(seq, 1, kept + 1, resolved, weights.host, [0]).subarray(kept * config.dim);
      const cmp = compareArrays(got.subarray(b * config.dim, (b + 1) * config.dim), want, TOLERANCE);
      expect(cmp.pass, `sequence ${b}: ${cmp.message}`).toBe(true);
    }
    weights.dispose();
  });
});

describe('MultiHeadAttention refuses bad configs and records', () => {
  const backendPromise = availableBackends().then(({ available: a }) => (a[0] ? a[0].create() : Promise.reject(new Error('no backend'))));
  const record = async (c: MultiHeadAttentionConfig, rng = new SeededRandom(1)): Promise<Record<string, Tensor>> =>
    randomLayerWeights(await backendPromise, resolveAttentionConfig('t', c), rng).record;

  it('configs', async () => {
    const r = await record({ dim: 8, nHeads: 2 });
    expect(() => new MultiHeadAttention({ dim: 8, nHeads: 0 }, r)).toThrow(ConfigError);
    expect(() => new MultiHeadAttention({ dim: 9, nHeads: 2 }, r)).toThrow(/dim \(9\) divisible by nHeads \(2\)/);
    // @ts-expect-error: MHA has as many kv heads as query heads
    expect(() => new MultiHeadAttention({ dim: 8, nHeads: 2, nKvHeads: 1 }, r)).toThrow(/use GroupedQueryAttention/);
    expect(() => new MultiHeadAttention({ dim: 8, nHeads: 2, rope: { layout: 'halfsplit', width: 3 } }, r)).toThrow(/rope.width even/);
    expect(() => new MultiHeadAttention({ dim: 8, nHeads: 2, rope: { layout: 'halfsplit', offset: 2, width: 4 } }, r)).toThrow(/offset \+ width ≤ headDim \(4\)/);
    // @ts-expect-error: not a layout
    expect(() => new MultiHeadAttention({ dim: 8, nHeads: 2, rope: { layout: 'neox' } }, r)).toThrow(/rope.layout/);
    expect(() => new MultiHeadAttention({ dim: 8, nHeads: 2, window: 2, causal: false }, r)).toThrow(/causal layer when a window is set/);
  });

  it('records: missing, duplicated, misshapen, unknown, and bias mismatches', async () => {
    const r = await record({ dim: 8, nHeads: 2 });
    const { wq, ...noQ } = r;
    expect(() => new MultiHeadAttention({ dim: 8, nHeads: 2 }, noQ)).toThrow(FormatError);
    expect(() => new MultiHeadAttention({ dim: 8, nHeads: 2 }, noQ)).toThrow(/a q projection weight named wq or wq.weight or q_proj.weight or q_proj/);
    expect(() => new MultiHeadAttention({ dim: 8, nHeads: 2 }, { ...r, 'q_proj.weight': wq as Tensor })).toThrow(/one tensor for the q projection weight, got wq and q_proj.weight/);
    expect(() => new MultiHeadAttention({ dim: 8, nHeads: 2 }, { ...r, extra: wq as Tensor })).toThrow(/unknown extra/);
    expect(() => new MultiHeadAttention({ dim: 8, nHeads: 2, bias: true }, r)).toThrow(/a q projection bias \(config bias\)/);
    expect(() => new MultiHeadAttention({ dim: 8, nHeads: 4 }, r)).not.toThrow(); // dim 8 / 4 heads: same weight shapes
    expect(() => new MultiHeadAttention({ dim: 8, nHeads: 2, headDim: 3 }, r)).toThrow(ShapeError);
    expect(() => new MultiHeadAttention({ dim: 8, nHeads: 2 }, r, { prefix: 'layers.0.' })).toThrow(/no tensors under the prefix 'layers.0.'/);
  });

  it('inputs: x of the wrong shape, a cache of another batch size', async () => {
    const backend = await backendPromise;
    const layer = new MultiHeadAttention({ dim: 8, nHeads: 2 }, await record({ dim: 8, nHeads: 2 }));
    using x = tensor(backend, new Float32Array(2 * 3 * 6), [2, 3, 6]);
    await expect(layer.forward(x)).rejects.toThrow(/\[MultiHeadAttention.forward\] expected x of shape \[B, S, 8\], got \[2, 3, 6\]/);
    using x8 = tensor(backend, new Float32Array(2 * 3 * 8), [2, 3, 8]);
    using cache = new HostCache(3);
    await expect(layer.forward(x8, { cache })).rejects.toThrow(/a cache of batch size 2, got 3/);
    await expect(layer.forward(x8, { startPositions: [0] })).rejects.toThrow(/2 start positions, got 1/);
    await expect(layer.forward(x8, { startPositions: -1 })).rejects.toThrow(ConfigError);
  });
});

/** Tokens t..t+n−1 of every sequence of x [B, N, dim]. */
function sliceTokens(x: Float32Array, B: number, N: number, dim: number, t: number, n: number): Float32Array {
  const out = new Float32Array(B * n * dim);
  for (let b = 0; b < B; b++) out.set(x.subarray((b * N + t) * dim, (b * N + t + n) * dim), b * n * dim);
  return out;
}

/** Concatenates per-call outputs [B, n_i, dim] along the token axis. */
function joinTokens(pieces: Float32Array[], B: number, dim: number): Float32Array {
  const N = pieces.reduce((a, p) => a + p.length / (B * dim), 0);
  const out = new Float32Array(B * N * dim);
  let t = 0;
  for (const p of pieces) {
    const n = p.length / (B * dim);
    for (let b = 0; b < B; b++) out.set(p.subarray(b * n * dim, (b + 1) * n * dim), (b * N + t) * dim);
    t += n;
  }
  return out;
}
