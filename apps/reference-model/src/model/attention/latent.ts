// MLA (DeepSeek-V3) and MLA + DSA (DeepSeek-V3.2) from @attnkit/attention-mla and
// @attnkit/indexer-dsa: the latent rows [c ‖ k_pe] cached once per token (and the indexer keys
// for DSA); MLA picks its evaluation order per call, absorbed for decode.

import { MLA } from '@attnkit/attention-mla';
import { DSA, DSACache } from '@attnkit/indexer-dsa';
import { MLALatentCache } from '@attnkit/kvcache';
import { type Backend, ConfigError, type Tensor } from '@attnkit/tensor-core';
import type { ModelConfig } from '../config.js';
import type { AttentionBlock, LayerCache, LayerCacheOptions } from './types.js';

function sizes(options: LayerCacheOptions): { batchSize: number; maxCapacity: number; step?: number } {
  return { batchSize: options.batchSize, maxCapacity: options.maxTokens, ...(options.step === undefined ? {} : { step: options.step }) };
}

export class LatentAttention implements AttentionBlock {
  readonly kind = 'mla' as const;
  readonly mla: MLA;

  private constructor(mla: MLA) {
    this.mla = mla;
  }

  static async create(backend: Backend, config: ModelConfig, record: Readonly<Record<string, Tensor>>, prefix: string): Promise<LatentAttention> {
    if (!config.mla) throw new ConfigError({ fn: 'LatentAttention.create', expected: 'an MLA config', got: config.attention });
    return new LatentAttention(await MLA.fromRecord(backend, config.mla, record, { prefix }));
  }

  createCache(options: LayerCacheOptions): MLALatentCache {
    const { kvLoraRank, qkRopeHeadDim } = this.mla.config;
    return new MLALatentCache(this.mla.backend, { ...sizes(options), kvLoraRank, ropeDim: qkRopeHeadDim });
  }

  async forward(x: Tensor, cache: LayerCache, signal?: AbortSignal): Promise<Tensor> {
    if (!(cache instanceof MLALatentCache)) throw new ConfigError({ fn: 'LatentAttention.forward', expected: 'the MLALatentCache from createCache()', got: cache.constructor.name });
    return this.mla.forward(x, { cache, ...(signal ? { signal } : {}) });
  }

  /** Frees MLA's absorbed weights and RoPE table (the projections belong to the model's Weights). */
  dispose(): void {
    this.mla.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

export class SparseLatentAttention implements AttentionBlock {
  readonly kind = 'dsa' as const;
  readonly dsa: DSA;

  private constructor(dsa: DSA) {
    this.dsa = dsa;
  }

  static async create(backend: Backend, config: ModelConfig, record: Readonly<Record<string, Tensor>>, prefix: string): Promise<SparseLatentAttention> {
    if (!config.dsa) throw new ConfigError({ fn: 'SparseLatentAttention.create', expected: 'a DSA config', got: config.attention });
    return new SparseLatentAttention(await DSA.fromRecord(backend, config.dsa, record, { prefix }));
  }

  createCache(options: LayerCacheOptions): DSACache {
    return this.dsa.createCache(sizes(options));
  }

  async forward(x: Tensor, cache: LayerCache, signal?: AbortSignal): Promise<Tensor> {
    if (!(cache instanceof DSACache)) throw new ConfigError({ fn: 'SparseLatentAttention.forward', expected: 'the DSACache from createCache()', got: cache.constructor.name });
    return this.dsa.forward(x, { cache, ...(signal ? { signal } : {}) });
  }

  dispose(): void {
    this.dsa.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
