// The two caches of one DSA layer, kept in step: MLA's latent rows [c ‖ k_pe] (C + dr per token)
// and the indexer's keys (D_I per token). DeepSeek-V3.2: 576 + 128 = 704 values per token and
// layer; as deployed (fp8 latent + bf16 rope, fp8 indexer key with one scale) 656 + 132 bytes.

import { IndexerKeyCache, type KVCache, MLALatentCache, type MLALatentCacheOptions, type StorageDType } from '@attnkit/kvcache';
import { type Backend, ConfigError } from '@attnkit/tensor-core';
import { type DSAConfigInput, type ResolvedDSAConfig, resolveDSAConfig } from './config.js';

/** What `DSA.forward` appends to: any latent-row cache plus an indexer key cache of the same batch. */
export interface DSACacheLike {
  /** MLA's latent rows (e.g. MLALatentCache, or a paged cache serving latent rows). */
  readonly latent: KVCache;
  readonly indexKeys: IndexerKeyCache;
}

export interface DSACacheOptions {
  readonly batchSize: number;
  /** Most tokens a sequence may hold (default Infinity). */
  readonly maxCapacity?: number;
  /** Tokens per sequence to allocate up front (default 0). */
  readonly initialCapacity?: number;
  /** Tokens added per growth (default 256). */
  readonly step?: number;
  /** Storage of the latent rows (default f32); see MLALatentCache. */
  readonly latentDtype?: StorageDType;
  /** Scale block of quantised latent rows (default: MLALatentCache's). */
  readonly latentBlockSize?: number;
  /**
   * Storage of the indexer keys: default f32, or fp8e4m3 (with 128-value scales) under
   * indexPrecision fp8, which requires it.
   */
  readonly indexDtype?: StorageDType;
}

export class DSACache implements DSACacheLike, Disposable {
  readonly latent: MLALatentCache;
  readonly indexKeys: IndexerKeyCache;

  constructor(backend: Backend, config: DSAConfigInput | ResolvedDSAConfig, options: DSACacheOptions) {
    const fn = 'DSACache';
    const c = resolveDSAConfig(config);
    const fp8 = c.indexPrecision === 'fp8';
    const indexDtype = options.indexDtype ?? (fp8 ? 'fp8e4m3' : 'f32');
    if (fp8 && indexDtype !== 'fp8e4m3') throw new ConfigError({ fn, expected: 'indexDtype fp8e4m3 under indexPrecision fp8', got: indexDtype });
    const sizes = {
      batchSize: options.batchSize,
      ...(options.maxCapacity === undefined ? {} : { maxCapacity: options.maxCapacity }),
      ...(options.initialCapacity === undefined ? {} : { initialCapacity: options.initialCapacity }),
      ...(options.step === undefined ? {} : { step: options.step }),
    };
    const latentOptions: MLALatentCacheOptions = {
      ...sizes,
      kvLoraRank: c.kvLoraRank,
      ropeDim: c.qkRopeHeadDim,
      dtype: options.latentDtype ?? 'f32',
      ...(options.latentBlockSize === undefined ? {} : { blockSize: options.latentBlockSize }),
    };
    this.latent = new MLALatentCache(backend, latentOptions);
    try {
      this.indexKeys = new IndexerKeyCache(backend, { ...sizes, keyDim: c.indexHeadDim, dtype: indexDtype, ...(fp8 ? { blockSize: c.indexer.quantBlockSize } : {}) });
    } catch (error) {
      this.latent.dispose();
      throw error;
    }
  }

  get batchSize(): number {
    return this.latent.batchSize;
  }

  /** Tokens held per sequence (the two caches always agree after a DSA call). */
  get lengths(): readonly number[] {
    return this.latent.lengths;
  }

  get capacity(): number {
    return Math.min(this.latent.capacity, this.indexKeys.capacity);
  }

  /** Bytes both caches hold now. */
  get nbytes(): number {
    return this.latent.nbytes + this.indexKeys.nbytes;
  }

  /** Rolls both caches back (speculative decoding). */
  truncate(length: number | readonly number[]): void {
    this.latent.truncate(length);
    this.indexKeys.truncate(length);
  }

  dispose(): void {
    this.latent.dispose();
    this.indexKeys.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
