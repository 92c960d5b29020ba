// IndexerKeyCache: the key cache of DeepSeek-V3.2's lightning indexer (DSA, spec §3).
//
// Contract (the DSA package codes against exactly this):
// - One key k_I [D_I] per token, shared by every indexer head (DeepSeek-V3.2: D_I = 128),
//   stored after LayerNorm and the half-split RoPE of its first dr channels.
// - Append with `updateAndFetch(keys, null)`, keys f32/f16/bf16 [B, S, 1, D_I].
// - The view: keys [B, Tcap, 1, D_I] (storage, no copy), values null, no valueDim, rowMap null,
//   lengths. The indexer scores I[p, t] = Σ_j w_j·ReLU(q_I,j·k_I,t) read it directly.
// - Storage f32/f16/bf16 or, as deployed, fp8e4m3 with one f32 scale per 128-value block
//   (one scale per key for D_I = 128: 132 B per token). The scale format is tensor-core's
//   exact amax/448 (DeepSeek's power-of-two "ue8m0" rounding is not applied on write).
// - `readIndexKeys()` → f32 [B, T, D_I], rows past a sequence's length 0 (the golden `index_k_cache`).

import { type Backend, type Tensor, reshape } from '@attnkit/tensor-core';
import { ContiguousKVCache } from './contiguous.js';
import { expectPositiveInt } from './layout.js';
import type { CacheView, KVCache, StorageDType, StorageOptions } from './types.js';

export interface IndexerKeyCacheOptions extends StorageOptions {
  readonly batchSize: number;
  /** D_I: the indexer head dim (DeepSeek-V3.2: 128). */
  readonly keyDim: number;
  /** Tokens added per growth (default 256). */
  readonly step?: number;
  /** Most tokens a sequence may hold (default Infinity). */
  readonly maxCapacity?: number;
  /** Tokens per sequence to allocate up front (default 0). */
  readonly initialCapacity?: number;
}

export class IndexerKeyCache implements KVCache {
  readonly kind = 'indexer-keys';
  readonly backend: Backend;
  /** D_I */
  readonly keyDim: number;
  readonly #inner: ContiguousKVCache;

  constructor(backend: Backend, options: IndexerKeyCacheOptions) {
    this.backend = backend;
    this.keyDim = expectPositiveInt('IndexerKeyCache', 'keyDim', options.keyDim);
    this.#inner = new ContiguousKVCache(backend, { ...options, kvHeads: 1, keyDim: this.keyDim, values: 'none' }, 'IndexerKeyCache');
  }

  get batchSize(): number {
    return this.#inner.batchSize;
  }

  get lengths(): readonly number[] {
    return this.#inner.lengths;
  }

  get capacity(): number {
    return this.#inner.capacity;
  }

  get dtype(): StorageDType {
    return this.#inner.dtype;
  }

  /** Scale block of quantised keys (1 for float storage). */
  get blockSize(): number {
    return this.#inner.layout.keyBlockSize;
  }

  get allocatedTokens(): number {
    return this.#inner.allocatedTokens;
  }

  get nbytes(): number {
    return this.#inner.nbytes;
  }

  /** Appends keys [B, S, 1, D_I]; `v` must be null. */
  updateAndFetch(keys: Tensor, v: Tensor | null = null): Promise<CacheView> {
    return this.#inner.updateAndFetch(keys, v);
  }

  view(): CacheView {
    return this.#inner.view();
  }

  truncate(length: number | readonly number[]): void {
    this.#inner.truncate(length);
  }

  reserve(tokens: number): Promise<void> {
    return this.#inner.reserve(tokens);
  }

  /** f32 [B, T, 1, D_I]. */
  readKeys(): Promise<Tensor> {
    return this.#inner.readKeys();
  }

  /** Always null: the cache holds keys only. */
  readValues(): Promise<Tensor | null> {
    return Promise.resolve(null);
  }

  /** f32 [B, T, D_I] (the golden `index_k_cache`). */
  async readIndexKeys(): Promise<Tensor> {
    using rows = await this.#inner.readKeys(); // [B, T, 1, D_I]
    return reshape(rows, [rows.shape[0] as number, rows.shape[1] as number, this.keyDim]); // [B, T, D_I]
  }

  dispose(): void {
    this.#inner.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
