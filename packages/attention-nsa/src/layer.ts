// The NSA layer: a validated config and weights, φ for its cache, and the forward pass.

import { CapacityError, ConfigError, ShapeError, formatShape, reshape, type Tensor } from '@attnkit/tensor-core';
import type { NSACompressionBatch, NSACompressor } from '@attnkit/kvcache';
import type { NSAKVCache } from './cache.js';
import { compressBlocks, type Compressor } from './compress.js';
import { type NSAConfig, type ResolvedNSAConfig, compressedBlockCount, resolveNSAConfig } from './config.js';
import { type NSAOptions, type NSAResult, nativeSparseAttention, validateQueries } from './nsa.js';
import { type NSAWeights, validateNSAWeights } from './weights.js';

export interface NSAForwardOptions extends Omit<NSAOptions, 'rowMap' | 'compressed'> {
  /**
   * With a cache, k and v are the new tokens' rows: they are appended (and compressed as
   * blocks complete) and the queries attend over everything the cache holds (`kvLengths`
   * then comes from the cache). Without one, k and v are the whole history.
   */
  readonly cache?: NSAKVCache;
}

/**
 * Native Sparse Attention (Yuan et al. 2025) on already-projected q, k, v: compressed blocks,
 * top-n selected blocks and a sliding window, mixed per head by sigmoid gates of x.
 *
 * ```ts
 * const nsa = new NativeSparseAttention({ nHeads: 8, nKvHeads: 2, headDim: 64, gateDim: 512 }, weights);
 * const cache = new NSACache(backend, { ..., compress: nsa.compress });
 * const { out } = await nsa.forward(q, k, v, x, { cache });   // prefill, then decode step by step
 * ```
 */
export class NativeSparseAttention {
  readonly config: ResolvedNSAConfig;
  readonly weights: NSAWeights;
  readonly #keyPhi: Compressor;
  readonly #valuePhi: Compressor;

  constructor(config: NSAConfig, weights: NSAWeights) {
    this.config = resolveNSAConfig(config, 'NativeSparseAttention');
    validateNSAWeights(weights, this.config);
    this.weights = weights;
    this.#keyPhi = { kind: this.config.phi, pe: weights.keyPE ?? null, mlp: weights.keyMLP ?? null };
    this.#valuePhi = { kind: this.config.phi, pe: weights.valuePE ?? null, mlp: weights.valueMLP ?? null };
  }

  /**
   * φ for the NSA cache: the blocks an append completed, [N, l, Hkv, ·] → [N, Hkv, ·]. Hand it
   * to the cache (`new NSACache(backend, { ..., compress: nsa.compress })`).
   */
  readonly compress: NSACompressor = async (batch: NSACompressionBatch) => {
    const fn = 'NativeSparseAttention.compress';
    const { nKvHeads: Hkv, headDim: D, vHeadDim: Dv, cmpBlock: l } = this.config;
    const N = batch.keys.shape[0] ?? 0;
    for (const [name, t, dim] of [['keys', batch.keys, D], ['values', batch.values, Dv]] as const) {
      if (t.rank !== 4 || t.shape[0] !== N || t.shape[1] !== l || t.shape[2] !== Hkv || t.shape[3] !== dim) {
        throw new ShapeError({ fn, expected: `block ${name} of shape [N, ${l}, ${Hkv}, ${dim}] (l = cmpBlock)`, got: formatShape(t.shape) });
      }
    }
    // Each block is a run of exactly l tokens: one compressed row per "sequence" of the batch.
    using k = await compressBlocks(batch.keys, this.#keyPhi, this.config); // [N, 1, Hkv, D]
    using v = await compressBlocks(batch.values, this.#valuePhi, this.config);
    return { keys: reshape(k, [N, Hkv, D]), values: reshape(v, [N, Hkv, Dv]) }; // [N, Hkv, ·]
  };

  /**
   * q [B, S, Hq, D], k [B, S|T, Hkv, D], v [B, S|T, Hkv, Dv], x [B, S, gateDim] → out [B, S, Hq, Dv].
   * The S queries are the newest tokens (bottom-right causal): prefill, decode and chunked
   * prefill are one call.
   */
  async forward(q: Tensor, k: Tensor, v: Tensor, x: Tensor, options: NSAForwardOptions = {}): Promise<NSAResult> {
    const { cache, ...rest } = options;
    if (!cache) return nativeSparseAttention(q, k, v, x, this.config, this.weights, rest);
    const fn = 'NativeSparseAttention.forward';
    if (rest.kvLengths) throw new ConfigError({ fn, expected: 'kvLengths only without a cache (the cache knows its lengths)', got: 'both' });
    // Everything the cache does not check is checked before the append, so a refused call leaves it unchanged.
    const { B, S } = validateQueries(fn, q, x, this.config);
    const { nKvHeads: Hkv, headDim: D, vHeadDim: Dv } = this.config;
    for (const [name, t, dim] of [['k', k, D], ['v', v, Dv]] as const) {
      t.assertAlive(fn);
      if (t.rank !== 4 || t.shape[0] !== B || t.shape[1] !== S || t.shape[2] !== Hkv || t.shape[3] !== dim) {
        throw new ShapeError({ fn, expected: `new ${name} rows of shape [${B}, ${S}, ${Hkv}, ${dim}] (one per query)`, got: formatShape(t.shape) });
      }
    }
    if (cache.blockLength !== this.config.cmpBlock || cache.blockStride !== this.config.cmpStride) {
      throw new ConfigError({
        fn,
        expected: `a cache compressing blocks of l = ${this.config.cmpBlock}, d = ${this.config.cmpStride} (the layer's)`,
        got: `l = ${cache.blockLength}, d = ${cache.blockStride}`,
      });
    }
    const before = cache.lengths;
    const view = await cache.updateAndFetch(k, v);
    try {
      const { compressed } = view;
      for (const [b, len] of view.lengths.entries()) {
        const need = compressedBlockCount(len, this.config);
        const have = compressed.counts[b] ?? 0;
        if (have < need) throw new CapacityError({ fn, expected: `${need} compressed blocks for sequence ${b} (${len} tokens)`, got: `${have} from the cache` });
      }
      return await nativeSparseAttention(q, view.keys, view.values, x, this.config, this.weights, {
        ...rest,
        kvLengths: view.lengths,
        rowMap: view.rowMap,
        compressed: { keys: compressed.keys, values: compressed.values },
      });
    } catch (error) {
      // A call that fails after its append (an abort, a refused option) takes its rows back out.
      cache.truncate(before);
      throw error;
    }
  }
}
