import { ConfigError } from '@attnkit/tensor-core';
import { AttentionLayer, type AttentionLayerOptions } from './attention-layer.js';
import { type AttentionLayerConfig, describeValue } from './config.js';
import type { AttentionWeightRecord } from './weights.js';

/** Multi-head attention: every query head has its own key/value head (Hkv = Hq). */
export type MultiHeadAttentionConfig = Omit<AttentionLayerConfig, 'nKvHeads'>;

/**
 * Multi-head attention (Vaswani et al.), token-major, with an optional RoPE and KV cache:
 * y = Wo · concat_h softmax(scale · q_h k_hᵀ + mask) v_h, with q = x Wqᵀ, k = x Wkᵀ, v = x Wvᵀ.
 *
 * ```ts
 * const mha = new MultiHeadAttention({ dim: 512, nHeads: 8, rope: { layout: 'halfsplit' } }, weights);
 * const y = await mha.forward(x, { cache }); // x [B, S, 512] → y [B, S, 512]
 * ```
 */
export class MultiHeadAttention extends AttentionLayer {
  constructor(config: MultiHeadAttentionConfig, weights: AttentionWeightRecord, options: AttentionLayerOptions = {}) {
    // A plain-JS caller may still pass nKvHeads; only nHeads itself is meaningful here.
    const nKvHeads = 'nKvHeads' in config ? config.nKvHeads : undefined;
    if (nKvHeads !== undefined && nKvHeads !== config.nHeads) {
      throw new ConfigError({ fn: 'MultiHeadAttention', expected: `nKvHeads equal to nHeads (${config.nHeads}); use GroupedQueryAttention from @attnkit/attention-gqa for fewer kv heads`, got: describeValue(nKvHeads) });
    }
    super({ ...config, nKvHeads: config.nHeads }, weights, options, 'MultiHeadAttention');
  }
}
