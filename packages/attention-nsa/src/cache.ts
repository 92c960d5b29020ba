// What NSA needs from its cache: the raw keys/values the selected and window branches read,
// plus the compressed blocks, kept up to date as tokens arrive through a compress callback
// that the layer supplies (φ lives here, the bookkeeping in @attnkit/kvcache's NSACache).
// These types restate NSACache's contract so this package builds before that cache lands.

import type { CacheView, KVCache } from '@attnkit/kvcache';
import type { Tensor } from '@attnkit/tensor-core';

/** The blocks one append completed, across the batch (the cache calls φ once per block). */
export interface NSACompressionBatch {
  /** f32 [N, l, Hkv, D]: raw keys of the newly completed blocks, token-major inside a block. */
  readonly keys: Tensor;
  /** f32 [N, l, Hkv, Dv]. */
  readonly values: Tensor;
  /** Sequence (batch index) of each block. */
  readonly sequences: readonly number[];
  /** Index i of each block in its sequence: it covers tokens [i·d, i·d + l − 1]. */
  readonly blockIndices: readonly number[];
}

export interface NSACompressedBlocks {
  /** [N, Hkv, D]. */
  readonly keys: Tensor;
  /** [N, Hkv, Dv]. */
  readonly values: Tensor;
}

/** φ over newly completed blocks; the cache owns (copies, then disposes) what it returns. */
export type NSACompressor = (batch: NSACompressionBatch) => Promise<NSACompressedBlocks>;

export interface NSACompressedView {
  /** [B, Ncap, Hkv, D]: block i of sequence b is row (b, i), valid for i < counts[b]. */
  readonly keys: Tensor;
  /** [B, Ncap, Hkv, Dv]. */
  readonly values: Tensor;
  /** Complete blocks per sequence, N_cmp(lengths[b]). */
  readonly counts: readonly number[];
  /** l the cache compresses with. */
  readonly blockLength: number;
  /** d the cache compresses with. */
  readonly blockStride: number;
}

/** An NSA cache's view after an append: the raw contiguous view plus the compressed blocks. */
export interface NSACacheView extends CacheView {
  readonly values: Tensor;
  readonly compressed: NSACompressedView;
}

/** A KV cache that also maintains NSA's compressed blocks. */
export interface NSAKVCache extends KVCache {
  /** l the cache compresses with (must equal the layer's cmpBlock). */
  readonly blockLength: number;
  /** d the cache compresses with (must equal the layer's cmpStride). */
  readonly blockStride: number;
  updateAndFetch(k: Tensor, v: Tensor | null): Promise<NSACacheView>;
}
