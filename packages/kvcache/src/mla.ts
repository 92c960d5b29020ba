// MLALatentCache: the cache of DeepSeek-V2/V3 Multi-head Latent Attention (spec §2).
//
// Contract (the MLA package codes against exactly this):
// - One row per token, shared by every head: [c ‖ k_pe], the RMSNorm'ed latent c (C =
//   kv_lora_rank channels) followed by the RoPE'd shared rope key k_pe (dr =
//   qk_rope_head_dim channels). DeepSeek-V3: 512 + 64 = 576 values per token per layer.
// - Append with `updateAndFetch(rows, null)`, rows f32/f16/bf16 [B, S, 1, C + dr].
// - The view: keys [B, Tcap, 1, C + dr] (storage, no copy), values null, valueDim C, rowMap
//   null, lengths. The absorbed form attends over it as MQA with V = the latent prefix, as
//   FlashMLA does: `attention(q̃ [B, S, H, C + dr], view.keys, null, { kvLengths: view.lengths,
//   valueDim: view.valueDim, scale })` returns ō [B, S, H, C] (σ uses dn + dr, spec pitfall 4).
// - `readLatent()` → f32 [B, T, C] and `readRope()` → f32 [B, T, dr] (T: the longest
//   sequence; rows past a sequence's length are 0): the golden `kv_cache` / `pe_cache`.
// - Storage f32/f16/bf16/int8/fp8e4m3. Quantised rows get one f32 scale per block of the
//   576-wide row (default block 64, so the rope part has scales of its own); the deployed
//   FlashMLA layout (fp8 latent + bf16 rope, 656 B) is accounted for in `kvBytesPerToken`.

import { type Backend, type Tensor, reshape } from '@attnkit/tensor-core';
import { ContiguousKVCache } from './contiguous.js';
import { expectPositiveInt } from './layout.js';
import type { CacheView, KVCache, StorageDType, StorageOptions } from './types.js';

export interface MLALatentCacheOptions extends StorageOptions {
  readonly batchSize: number;
  /** C: the latent width (DeepSeek-V3: 512). */
  readonly kvLoraRank: number;
  /** dr: the shared rope key width (DeepSeek-V3: 64). */
  readonly ropeDim: number;
  /** Tokens added per growth (default 256). */
  readonly step?: number;
  /** Most tokens a sequence may hold (default Infinity). */
  readonly maxCapacity?: number;
  /** Tokens per sequence to allocate up front (default 0). */
  readonly initialCapacity?: number;
}

export class MLALatentCache implements KVCache {
  readonly kind = 'mla-latent';
  readonly backend: Backend;
  /** C */
  readonly kvLoraRank: number;
  /** dr */
  readonly ropeDim: number;
  readonly #inner: ContiguousKVCache;

  constructor(backend: Backend, options: MLALatentCacheOptions) {
    const fn = 'MLALatentCache';
    this.backend = backend;
    this.kvLoraRank = expectPositiveInt(fn, 'kvLoraRank', options.kvLoraRank);
    this.ropeDim = expectPositiveInt(fn, 'ropeDim', options.ropeDim);
    this.#inner = new ContiguousKVCache(backend, {
      ...options,
      kvHeads: 1,
      keyDim: this.kvLoraRank + this.ropeDim,
      valueDim: this.kvLoraRank,
      values: 'keyPrefix',
    }, fn);
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

  /** Values per cached row: C + dr. */
  get rowWidth(): number {
    return this.kvLoraRank + this.ropeDim;
  }

  /** Scale block of quantised rows (1 for float storage). */
  get blockSize(): number {
    return this.#inner.layout.keyBlockSize;
  }

  get allocatedTokens(): number {
    return this.#inner.allocatedTokens;
  }

  get nbytes(): number {
    return this.#inner.nbytes;
  }

  /** Appends rows [B, S, 1, C + dr] = [c ‖ k_pe] per token; `v` must be null. */
  updateAndFetch(rows: Tensor, v: Tensor | null = null): Promise<CacheView> {
    return this.#inner.updateAndFetch(rows, v);
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

  /** f32 [B, T, 1, C + dr]. */
  readKeys(): Promise<Tensor> {
    return this.#inner.readKeys();
  }

  /** Always null: the values are the latent prefix of the keys. */
  readValues(): Promise<Tensor | null> {
    return Promise.resolve(null);
  }

  /** The latent c as f32 [B, T, C] (the golden `kv_cache`). */
  readLatent(): Promise<Tensor> {
    return this.#readSlice(0, this.kvLoraRank);
  }

  /** The rotated shared rope key k_pe as f32 [B, T, dr] (the golden `pe_cache`). */
  readRope(): Promise<Tensor> {
    return this.#readSlice(this.kvLoraRank, this.ropeDim);
  }

  async #readSlice(from: number, width: number): Promise<Tensor> {
    using rows = await this.#inner.readKeyChannels(from, width); // [B, T, 1, width]
    return reshape(rows, [rows.shape[0] as number, rows.shape[1] as number, width]); // [B, T, width]
  }

  dispose(): void {
    this.#inner.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
