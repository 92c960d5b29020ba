// MHA, GQA and MQA with Llama's projections and half-split RoPE over the whole head, from
// @attnkit/attention-mha and @attnkit/attention-gqa; K and V cached contiguously.

import { type AttentionLayer, MultiHeadAttention } from '@attnkit/attention-mha';
import { GroupedQueryAttention, MultiQueryAttention } from '@attnkit/attention-gqa';
import { ContiguousKVCache } from '@attnkit/kvcache';
import { type Backend, ConfigError, type Tensor, throwIfAborted } from '@attnkit/tensor-core';
import type { AttentionKind, ModelConfig } from '../config.js';
import type { AttentionBlock, LayerCache, LayerCacheOptions } from './types.js';

export class DenseAttention implements AttentionBlock {
  readonly kind: AttentionKind;
  readonly layer: AttentionLayer;
  readonly #backend: Backend;

  /** `record` holds this layer's q/k/v/o projections under `prefix` (HF names). */
  constructor(backend: Backend, config: ModelConfig, record: Readonly<Record<string, Tensor>>, prefix: string) {
    this.#backend = backend;
    this.kind = config.attention;
    const base = {
      dim: config.dim,
      nHeads: config.nHeads,
      headDim: config.headDim,
      bias: config.attentionBias,
      rope: { layout: 'halfsplit', theta: config.ropeTheta },
    } as const;
    const options = { prefix };
    if (config.attention === 'mha') this.layer = new MultiHeadAttention(base, record, options);
    else if (config.attention === 'mqa') this.layer = new MultiQueryAttention(base, record, options);
    else if (config.attention === 'gqa') this.layer = new GroupedQueryAttention({ ...base, nKvHeads: config.nKvHeads }, record, options);
    else throw new ConfigError({ fn: 'DenseAttention', expected: 'attention mha, gqa or mqa', got: config.attention });
  }

  createCache(options: LayerCacheOptions): ContiguousKVCache {
    const { nKvHeads, headDim, vHeadDim } = this.layer.config;
    return new ContiguousKVCache(this.#backend, {
      batchSize: options.batchSize,
      kvHeads: nKvHeads,
      keyDim: headDim,
      valueDim: vHeadDim,
      maxCapacity: options.maxTokens,
      ...(options.step === undefined ? {} : { step: options.step }),
    });
  }

  async forward(x: Tensor, cache: LayerCache, signal?: AbortSignal): Promise<Tensor> {
    if (!(cache instanceof ContiguousKVCache)) throw new ConfigError({ fn: 'DenseAttention.forward', expected: 'the ContiguousKVCache from createCache()', got: cache.constructor.name });
    throwIfAborted(signal, 'DenseAttention.forward');
    return this.layer.forward(x, { cache, ...(signal ? { signal } : {}) });
  }

  /** The projections belong to the model's Weights; nothing else is held. */
  dispose(): void {}

  [Symbol.dispose](): void {
    this.dispose();
  }
}
