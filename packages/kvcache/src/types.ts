// The one cache interface every attention variant uses (in the spirit of mlx-lm's
// models/cache.py): append a layer's new rows, get back what attention reads.
//
// Axis letters: B batch, S new tokens, T tokens held, Hkv kv heads, D key dim, Dv value dim.

import type { DType, Tensor } from '@attnkit/tensor-core';

/**
 * What attention reads after an append. The tensors are owned by the cache: valid until the
 * next call that changes it, never disposed by the caller. The fields map one to one onto the
 * options of `attention()` in @attnkit/attention-mha:
 * `attention(q, view.keys, view.values, { kvLengths: view.lengths, rowMap: view.rowMap, valueDim: view.valueDim, sinkTokens: view.sinkTokens })`.
 */
export interface CacheView {
  /** [B, Tcap, Hkv, D] contiguous (key t of sequence b is row (b, t)), or a row pool [R, Hkv, D] read through `rowMap`. */
  readonly keys: Tensor;
  /** Values in the same layout, or null when values are the first `valueDim` channels of each key row (MLA latent). */
  readonly values: Tensor | null;
  readonly valueDim?: number;
  /** i32 [B, Tmax]: pool row of each logical key (paged and ring-buffer caches); null when contiguous. */
  readonly rowMap: Tensor | null;
  /** Valid logical keys per sequence after this append. */
  readonly lengths: readonly number[];
  /** Sliding-window caches with sinks: the first sinkTokens logical keys are attention sinks. */
  readonly sinkTokens?: number;
}

export interface KVCache extends Disposable {
  readonly kind: string;
  readonly batchSize: number;
  /** Tokens held per sequence. */
  readonly lengths: readonly number[];
  /** Most tokens one sequence can hold (Infinity when the cache grows without bound). */
  readonly capacity: number;
  /** Storage dtype of the cached rows. */
  readonly dtype: DType;
  /** Bytes of device or host memory the cache holds right now (payload plus quantisation scales). */
  readonly nbytes: number;
  /**
   * Appends k [B, S, Hkv, D] and v [B, S, Hkv, Dv] (v null for latent caches) to every
   * sequence and returns the view attention reads. Throws CapacityError (and changes nothing)
   * if a sequence would overflow.
   */
  updateAndFetch(k: Tensor, v: Tensor | null): Promise<CacheView>;
  /** Rolls every sequence (or each one, given B lengths) back to `length` tokens (speculative decoding). */
  truncate(length: number | readonly number[]): void;
  /** Frees everything; the cache is unusable afterwards. */
  dispose(): void;
}
