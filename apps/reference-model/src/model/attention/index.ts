// The attention layer of a decoder block, chosen by the config's attention kind.

import type { Backend } from '@attnkit/tensor-core';
import type { ModelConfig } from '../config.js';
import type { Weights } from '../weights.js';
import { DenseAttention } from './dense.js';
import { LatentAttention, SparseLatentAttention } from './latent.js';
import { NativeSparseBlock } from './nsa.js';
import type { AttentionBlock } from './types.js';

export type { AttentionBlock, LayerCache, LayerCacheOptions } from './types.js';

/** Layer `prefix`'s attention (`model.layers.{i}.self_attn.`), its weights borrowed from `weights`. */
export async function createAttention(backend: Backend, config: ModelConfig, weights: Weights, prefix: string): Promise<AttentionBlock> {
  const record = weights.under(prefix);
  switch (config.attention) {
    case 'mha':
    case 'gqa':
    case 'mqa':
      return new DenseAttention(backend, config, record, prefix);
    case 'mla':
      return LatentAttention.create(backend, config, record, prefix);
    case 'dsa':
      return SparseLatentAttention.create(backend, config, record, prefix);
    case 'nsa':
      return new NativeSparseBlock(backend, config, record, prefix);
  }
}
