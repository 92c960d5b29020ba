// Grouped-query attention (Ainslie et al., 2023) and its limit, multi-query attention
// (Shazeer, 2019): Hq query heads share Hkv key/value heads, query head h reading kv head
// ⌊h / (Hq/Hkv)⌋. The layer is the attention core's AttentionLayer with fewer kv heads: K and
// V are projected, cached and read once per group, never repeated per query head.

import { AttentionLayer, type AttentionLayerConfig, type AttentionLayerOptions, type AttentionWeightRecord } from '@attnkit/attention-mha';
import { ConfigError } from '@attnkit/tensor-core';

/** GQA: `nKvHeads` is required and divides `nHeads` (Llama 3 8B: 32 query heads, 8 kv heads). */
export type GroupedQueryAttentionConfig = AttentionLayerConfig & { readonly nKvHeads: number };

/**
 * Grouped-query attention with projections, optional RoPE and a KV cache.
 *
 * ```ts
 * const gqa = new GroupedQueryAttention({ dim: 4096, nHeads: 32, nKvHeads: 8, rope: { layout: 'halfsplit', theta: 500000 } }, weights, { prefix: 'model.layers.0.self_attn.' });
 * const y = await gqa.forward(x, { cache });
 * ```
 */
export class GroupedQueryAttention extends AttentionLayer {
  constructor(config: GroupedQueryAttentionConfig, weights: AttentionWeightRecord, options: AttentionLayerOptions = {}) {
    if (config.nKvHeads === undefined) {
      throw new ConfigError({ fn: 'GroupedQueryAttention', expected: 'nKvHeads (the number of key/value heads)', got: 'undefined' });
    }
    super(config, weights, options, 'GroupedQueryAttention');
  }

  /** Query heads per kv head, G = Hq / Hkv. */
  get groupSize(): number {
    return this.config.nHeads / this.config.nKvHeads;
  }
}

/** MQA: one key/value head shared by every query head. */
export type MultiQueryAttentionConfig = Omit<AttentionLayerConfig, 'nKvHeads'>;

/** Multi-query attention: GroupedQueryAttention with a single key/value head. */
export class MultiQueryAttention extends GroupedQueryAttention {
  constructor(config: MultiQueryAttentionConfig, weights: AttentionWeightRecord, options: AttentionLayerOptions = {}) {
    const nKvHeads = 'nKvHeads' in config ? config.nKvHeads : undefined;
    if (nKvHeads !== undefined && nKvHeads !== 1) {
      throw new ConfigError({ fn: 'MultiQueryAttention', expected: 'one key/value head (or no nKvHeads)', got: typeof nKvHeads === 'number' ? String(nKvHeads) : typeof nKvHeads });
    }
    super({ ...config, nKvHeads: 1 }, weights, options);
  }
}
