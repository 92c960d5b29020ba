// What the decoder needs from an attention layer, whichever variant it is: a cache of its own
// kind, and a forward pass that appends this call's tokens to it.

import type { Tensor } from '@attnkit/tensor-core';
import type { AttentionKind } from '../config.js';

/** One layer's cache: a @attnkit/kvcache cache (or DSA's pair of them). */
export interface LayerCache extends Disposable {
  /** Tokens held per sequence. */
  readonly lengths: readonly number[];
  /** Bytes held now (capacity allocated, not only the tokens written). */
  readonly nbytes: number;
  truncate(length: number | readonly number[]): void;
  dispose(): void;
}

export interface LayerCacheOptions {
  readonly batchSize: number;
  /** Most tokens a sequence may hold (the model's max_position_embeddings at most). */
  readonly maxTokens: number;
  /** Tokens added per growth (default: the cache's own, 256). */
  readonly step?: number;
}

export interface AttentionBlock extends Disposable {
  readonly kind: AttentionKind;
  createCache(options: LayerCacheOptions): LayerCache;
  /**
   * x [B, S, dim] (the normalised residual) → [B, S, dim]. The S tokens are appended to
   * `cache` and sit at positions cache.lengths[b]…; a failed call leaves the cache as it was.
   */
  forward(x: Tensor, cache: LayerCache, signal?: AbortSignal): Promise<Tensor>;
  dispose(): void;
}
