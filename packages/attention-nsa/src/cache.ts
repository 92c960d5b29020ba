// What NSA needs from its cache: the raw keys/values the selected and window branches read,
// plus the compressed blocks, kept up to date as tokens arrive by a compress callback that
// the layer supplies (φ lives here, the bookkeeping in @attnkit/kvcache).

import type { CacheView, KVCache } from '@attnkit/kvcache';
import type { Tensor } from '@attnkit/tensor-core';

/** An NSA cache's view after an append: the usual CacheView plus the compressed blocks. */
export interface NSACacheView extends CacheView {
  /** K_cmp [B, Ncap, Hkv, D]; block i of sequence b is valid for i < compressedLengths[b]. */
  readonly compressedKeys: Tensor;
  /** V_cmp [B, Ncap, Hkv, Dv]. */
  readonly compressedValues: Tensor;
  /** Complete compression blocks per sequence, ⌊(len − l)/d⌋ + 1 (0 below l tokens). */
  readonly compressedLengths: readonly number[];
}

/** A KV cache that also maintains NSA's compressed blocks. */
export interface NSAKVCache extends KVCache {
  updateAndFetch(k: Tensor, v: Tensor | null): Promise<NSACacheView>;
}

/**
 * φ for a cache: compresses a run of tokens keys [B, L, Hkv, D], values [B, L, Hkv, Dv] that
 * starts at a block boundary (a multiple of d) into its complete blocks [B, N, Hkv, ·],
 * N = ⌊(L − l)/d⌋ + 1. The caller owns the returned tensors.
 */
export type CompressFn = (keys: Tensor, values: Tensor) => Promise<{ keys: Tensor; values: Tensor }>;
