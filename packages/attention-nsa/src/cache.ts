// What the layer needs from its cache: @attnkit/kvcache's NSACache, or anything shaped like it —
// the raw keys/values the selected and window branches read, plus the compressed blocks it keeps
// up to date as tokens arrive by calling the layer's `compress` (φ lives here, the bookkeeping
// there: which blocks an append completed, compressing each once, truncation).

import type { KVCache, NSACacheView } from '@attnkit/kvcache';
import type { Tensor } from '@attnkit/tensor-core';

/** A KV cache that also maintains NSA's compressed blocks (NSACache implements it). */
export interface NSAKVCache extends KVCache {
  /** l the cache compresses with (must equal the layer's cmpBlock). */
  readonly blockLength: number;
  /** d the cache compresses with (must equal the layer's cmpStride). */
  readonly blockStride: number;
  updateAndFetch(k: Tensor, v: Tensor | null): Promise<NSACacheView>;
}
