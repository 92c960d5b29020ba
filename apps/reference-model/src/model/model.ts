// The decoder-only reference model (in the spirit of DeepSeek-V3's inference/model.py):
//
//   x = embed(tokens)                                   [B, S, dim]
//   for each layer: x = x + attn(norm(x)); x = x + SwiGLU(norm(x))
//   logits = lm_head(norm(x))                           [B, S, vocab]
//
// Prefill and decode are one call: `forward(tokens, cache)` appends the tokens to the cache and
// returns their logits, so a prompt is one call and every generated token another.

import { kvBytesPerToken, type KVCacheConfig } from '@attnkit/kvcache';
import { type Backend, BackendError, CapacityError, ConfigError, type Tensor, linear, slice, throwIfAborted } from '@attnkit/tensor-core';
import { createAttention } from './attention/index.js';
import { DecoderLayer } from './block.js';
import { ModelCache } from './cache.js';
import { type Checkpoint, type CheckpointFiles, readCheckpoint } from './checkpoint.js';
import type { ModelConfig } from './config.js';
import { Embedding } from './embedding.js';
import { SwiGLU } from './mlp.js';
import { RMSNorm } from './rmsnorm.js';
import { attentionPrefix, layerPrefix } from './tensor-names.js';
import { yieldToEventLoop } from '../util/yield.js';
import { Weights } from './weights.js';

export interface ForwardOptions {
  /** Only the last position's logits ([B, 1, vocab]): what generation needs. Default false. */
  readonly lastOnly?: boolean;
  readonly signal?: AbortSignal;
}

export interface CacheOptions {
  /** Sequences decoded together (default 1). */
  readonly batchSize?: number;
  /** Most tokens per sequence (default and upper bound: max_position_embeddings). */
  readonly maxTokens?: number;
  /** Tokens each layer cache grows by (default 256). */
  readonly step?: number;
}

export class Model implements Disposable {
  readonly config: ModelConfig;
  readonly backend: Backend;
  readonly weights: Weights;
  readonly embedding: Embedding;
  readonly layers: readonly DecoderLayer[];
  readonly norm: RMSNorm;
  /** [vocab, dim] */
  readonly lmHead: Tensor;
  #disposed = false;

  private constructor(parts: { config: ModelConfig; backend: Backend; weights: Weights; layers: DecoderLayer[] }) {
    const { config, weights } = parts;
    this.config = config;
    this.backend = parts.backend;
    this.weights = weights;
    this.layers = parts.layers;
    this.embedding = new Embedding(weights.get('model.embed_tokens.weight'));
    this.norm = new RMSNorm(weights.get('model.norm.weight'), config.normEps);
    this.lmHead = weights.has('lm_head.weight') ? weights.get('lm_head.weight') : weights.get('model.embed_tokens.weight');
  }

  /** Loads a checkpoint from memory: file name → bytes (browser-safe; `loadModelFromFolder` in node.ts reads a folder). */
  static async load(backend: Backend, source: CheckpointFiles | Checkpoint): Promise<Model> {
    const checkpoint = isCheckpoint(source) ? source : readCheckpoint(source);
    if (backend.isDisposed) throw new BackendError({ fn: 'Model.load', expected: 'a live backend', got: `${backend.info.name} after dispose()` });
    const { config } = checkpoint;
    const weights = Weights.upload(backend, checkpoint);
    const layers: DecoderLayer[] = [];
    try {
      for (let i = 0; i < config.nLayers; i++) {
        const l = layerPrefix(i);
        layers.push(
          new DecoderLayer({
            attentionNorm: new RMSNorm(weights.get(`${l}input_layernorm.weight`), config.normEps),
            attention: await createAttention(backend, config, weights, attentionPrefix(i)),
            mlpNorm: new RMSNorm(weights.get(`${l}post_attention_layernorm.weight`), config.normEps),
            mlp: new SwiGLU({ gate: weights.get(`${l}mlp.gate_proj.weight`), up: weights.get(`${l}mlp.up_proj.weight`), down: weights.get(`${l}mlp.down_proj.weight`) }),
          }),
        );
      }
    } catch (error) {
      for (const layer of layers) layer.dispose();
      weights.dispose();
      throw error;
    }
    return new Model({ config, backend, weights, layers });
  }

  /** A fresh cache for `batchSize` sequences of at most `maxTokens` tokens. Dispose it when done. */
  createCache(options: CacheOptions = {}): ModelCache {
    const fn = 'Model.createCache';
    this.#assertUsable(fn);
    const batchSize = options.batchSize ?? 1;
    const maxTokens = options.maxTokens ?? this.config.maxPositions;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new ConfigError({ fn, expected: 'batchSize a positive integer', got: String(batchSize) });
    if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > this.config.maxPositions) {
      throw new ConfigError({ fn, expected: `maxTokens in [1, ${this.config.maxPositions}] (max_position_embeddings)`, got: String(maxTokens) });
    }
    const caches = [];
    try {
      for (const layer of this.layers) caches.push(layer.attention.createCache({ batchSize, maxTokens, ...(options.step === undefined ? {} : { step: options.step }) }));
    } catch (error) {
      for (const c of caches) c.dispose();
      throw error;
    }
    return new ModelCache(caches, batchSize, maxTokens);
  }

  /**
   * tokens [B][S] → logits [B, S, vocab] (or [B, 1, vocab] with `lastOnly`), appending the tokens
   * to `cache` at positions cache.lengths[b]…. On failure the cache is as the call found it.
   */
  async forward(tokens: readonly (readonly number[])[], cache: ModelCache, options: ForwardOptions = {}): Promise<Tensor> {
    const fn = 'Model.forward';
    this.#assertUsable(fn);
    cache.assertUsable(fn);
    const { signal } = options;
    throwIfAborted(signal, fn);
    if (tokens.length !== cache.batchSize) throw new ConfigError({ fn, expected: `${cache.batchSize} sequences (the cache's batch size)`, got: String(tokens.length) });
    const before = [...cache.lengths];
    const S = tokens[0]?.length ?? 0;
    for (const [b, length] of before.entries()) {
      if (length + S > cache.maxTokens) throw new CapacityError({ fn, expected: `at most ${cache.maxTokens} tokens per sequence`, got: `${length} cached + ${S} new for sequence ${b}` });
    }
    let x = await this.embedding.forward(tokens); // [B, S, dim]
    try {
      for (const [i, layer] of this.layers.entries()) {
        if (signal) await yieldToEventLoop(); // an abort can land between layers of a long prefill
        throwIfAborted(signal, fn);
        const cacheOfLayer = cache.layers[i];
        if (!cacheOfLayer) throw new ConfigError({ fn, expected: `a cache of ${this.layers.length} layers`, got: String(cache.layers.length) });
        const next = await layer.forward(x, cacheOfLayer, signal);
        x.dispose();
        x = next;
      }
      throwIfAborted(signal, fn);
      return await this.#head(x, options.lastOnly ?? false);
    } catch (error) {
      cache.truncate(before);
      throw error;
    } finally {
      x.dispose();
    }
  }

  /** Bytes of KV cache per token over all layers (spec §5, f32 storage; NSA amortises its compressed rows). */
  get kvBytesPerToken(): number {
    return kvBytesPerToken(kvCacheConfig(this.config));
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const layer of this.layers) layer.dispose();
    this.weights.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  async #head(x: Tensor, lastOnly: boolean): Promise<Tensor> {
    const [B = 0, S = 0, dim = 0] = x.shape;
    using last = lastOnly && S > 1 ? await slice(x, [0, S - 1, 0], [B, 1, dim]) : null; // [B, 1, dim]
    using h = await this.norm.forward(last ?? x);
    return await linear(h, this.lmHead); // [B, S|1, vocab]
  }

  #assertUsable(fn: string): void {
    if (this.#disposed) throw new BackendError({ fn, expected: 'a live model', got: 'one after dispose()' });
  }
}

function isCheckpoint(source: CheckpointFiles | Checkpoint): source is Checkpoint {
  return 'config' in source && 'tensors' in source;
}

/** The kvcache package's accounting config for this model's layers. */
export function kvCacheConfig(c: ModelConfig): KVCacheConfig {
  const layers = c.nLayers;
  const dtype = 'f32'; // the caches' storage here
  if (c.dsa) return { variant: 'dsa', layers, dtype, kvLoraRank: c.dsa.kvLoraRank, ropeDim: c.dsa.qkRopeHeadDim, indexDim: c.dsa.indexHeadDim };
  if (c.mla) return { variant: 'mla', layers, dtype, kvLoraRank: c.mla.kvLoraRank, ropeDim: c.mla.qkRopeHeadDim };
  if (c.nsa) return { variant: 'nsa', layers, dtype, kvHeads: c.nKvHeads, headDim: c.headDim, blockLength: c.nsa.cmpBlock, blockStride: c.nsa.cmpStride };
  const variant = c.attention === 'mqa' ? 'mqa' : c.attention === 'gqa' ? 'gqa' : 'mha';
  return { variant, layers, dtype, kvHeads: c.nKvHeads, headDim: c.headDim };
}
