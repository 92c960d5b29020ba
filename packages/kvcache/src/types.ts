// The one cache interface every attention variant uses (in the spirit of mlx-lm's
// models/cache.py): append a layer's new rows, get back what attention reads.
//
// Axis letters: B batch, S new tokens, T tokens held, Hkv kv heads, D key dim, Dv value dim,
// R rows of a pool, C latent (kv_lora_rank).

import type { Tensor } from '@attnkit/tensor-core';

/** Storage dtypes a cache can hold its rows in (compute stays f32; the attention core and `gather` decode on load). */
export type StorageDType = 'f32' | 'f16' | 'bf16' | 'int8' | 'fp8e4m3';

/**
 * What attention reads after an append. The tensors are owned by the cache: valid until the
 * next call that changes it, never disposed by the caller. The fields map one to one onto the
 * options of `attention()` in @attnkit/attention-mha:
 * `attention(q, view.keys, view.values, { kvLengths: view.lengths, rowMap: view.rowMap, valueDim: view.valueDim, sinkTokens: view.sinkTokens, window: view.window })`.
 */
export interface CacheView {
  /** [B, Tcap, Hkv, D] contiguous (key t of sequence b is row (b, t)), or a row pool [R, Hkv, D] read through `rowMap`. */
  readonly keys: Tensor;
  /** Values in the same layout, or null when values are the first `valueDim` channels of each key row (MLA latent) or absent (indexer keys). */
  readonly values: Tensor | null;
  /** With `values` null: how many leading key channels are the value (MLA: C). Absent for key-only caches. */
  readonly valueDim?: number;
  /** i32 [B, Tmax]: pool row of each logical key (paged and ring-buffer caches); null when contiguous. */
  readonly rowMap: Tensor | null;
  /**
   * Valid logical keys per sequence in this view. Equal to the cache's `lengths` except for the
   * sliding-window cache, whose view holds only the sinks and the retained window.
   */
  readonly lengths: readonly number[];
  /** Sliding-window caches with sinks: the first sinkTokens logical keys are attention sinks. */
  readonly sinkTokens?: number;
  /** Sliding-window caches: the window (keys per query, itself included) the view was kept for. */
  readonly window?: number;
}

export interface KVCache extends Disposable {
  readonly kind: string;
  readonly batchSize: number;
  /** Tokens appended per sequence (for the sliding-window cache this counts evicted tokens too). */
  readonly lengths: readonly number[];
  /** Most tokens one sequence can hold (Infinity when the cache grows without bound). */
  readonly capacity: number;
  /** Storage dtype of the cached rows. */
  readonly dtype: StorageDType;
  /** Bytes of device or host memory the cache holds right now (payload, quantisation scales, row maps). */
  readonly nbytes: number;
  /**
   * Appends k [B, S, Hkv, D] and v [B, S, Hkv, Dv] (v null for key-prefix and key-only caches)
   * to every sequence and returns the view attention reads. Throws CapacityError, ShapeError or
   * DTypeError (and changes nothing) on bad input or if a sequence would overflow.
   */
  updateAndFetch(k: Tensor, v: Tensor | null): Promise<CacheView>;
  /** Rolls every sequence (or each one, given B lengths) back to `length` tokens (speculative decoding). */
  truncate(length: number | readonly number[]): void;
  /**
   * The logical key rows of the current view as a new f32 tensor [B, Tmax, Hkv, D], rows past a
   * sequence's view length zero (Tmax: the longest view length). For tests and inspection, not
   * for the hot path; the caller disposes it.
   */
  readKeys(): Promise<Tensor>;
  /** Like readKeys for the values [B, Tmax, Hkv, Dv]; null when the cache stores no separate values. */
  readValues(): Promise<Tensor | null>;
  /** Frees everything; the cache is unusable afterwards. Idempotent. */
  dispose(): void;
}

/** Where the values of a cache live. */
export type ValueLayout =
  /** A V tensor beside K (MHA, GQA, MQA, NSA). */
  | 'separate'
  /** V is the first `valueDim` channels of each key row: MLA's absorbed form caches [c ‖ k_pe] once. */
  | 'keyPrefix'
  /** Keys only (the DSA indexer). */
  | 'none';

export interface StorageOptions {
  /** Storage dtype of the rows. Default `f32`. */
  readonly dtype?: StorageDType;
  /**
   * int8 / fp8e4m3: values per f32 scale along each row's last axis (the head dim). Default
   * `defaultBlockSize(D)`: 128 when it divides the row, the row width when narrower, else the
   * largest power of two dividing the row (64 for MLA's 576-wide row). Must divide the row.
   */
  readonly blockSize?: number;
}

/** The row geometry shared by the contiguous, paged and sliding-window caches. */
export interface RowOptions extends StorageOptions {
  /** Key/value heads per token (Hkv). */
  readonly kvHeads: number;
  /** Key head dim (D). */
  readonly keyDim: number;
  /** Value head dim (Dv). Default keyDim for `separate`; required (≤ keyDim) for `keyPrefix`; ignored for `none`. */
  readonly valueDim?: number;
  /** Default `separate`. */
  readonly values?: ValueLayout;
}
