// NSA (spec §4) on Llama's projections (model_type attnkit_nsa): q and k carry half-split RoPE
// before they are cached and compressed, as in tooling/train/attnkit_train/attention_nsa.py;
// the three branches and their gates are @attnkit/attention-nsa's, the cache (raw K/V plus the
// compressed blocks, filled through the layer's φ as blocks complete) @attnkit/kvcache's.

import { type CompressorMLP, NativeSparseAttention, type NSAWeights } from '@attnkit/attention-nsa';
import { NSACache } from '@attnkit/kvcache';
import { type Backend, ConfigError, type Tensor, linear, reshape, rope, ropeInvFreq, tensor, throwIfAborted } from '@attnkit/tensor-core';
import type { ModelConfig } from '../config.js';
import type { AttentionBlock, LayerCache, LayerCacheOptions } from './types.js';

interface Projection {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
}

export class NativeSparseBlock implements AttentionBlock {
  readonly kind = 'nsa' as const;
  readonly nsa: NativeSparseAttention;
  readonly #backend: Backend;
  readonly #proj: Readonly<Record<'q' | 'k' | 'v' | 'o', Projection>>;
  /** f32 [D/2]: RoPE frequencies. */
  readonly #invFreq: Tensor;

  /** `record` holds this layer's tensors under `prefix` (HF names, docs/checkpoint-format.md). */
  constructor(backend: Backend, config: ModelConfig, record: Readonly<Record<string, Tensor>>, prefix: string) {
    const fn = 'NativeSparseBlock';
    if (!config.nsa) throw new ConfigError({ fn, expected: 'an NSA config', got: config.attention });
    const get = (name: string): Tensor => {
      const t = record[prefix + name];
      if (!t) throw new ConfigError({ fn, expected: `a tensor "${prefix}${name}"`, got: 'none' });
      return t;
    };
    const maybe = (name: string): Tensor | null => record[prefix + name] ?? null;
    const projection = (p: string): Projection => ({ weight: get(`${p}_proj.weight`), bias: maybe(`${p}_proj.bias`) });
    this.#proj = { q: projection('q'), k: projection('k'), v: projection('v'), o: projection('o') };
    const mlp = (side: 'k' | 'v'): CompressorMLP | null =>
      config.nsaMlpHidden === null ? null : { w1: get(`compress.${side}_w1`), b1: maybe(`compress.${side}_b1`), w2: get(`compress.${side}_w2`), b2: maybe(`compress.${side}_b2`) };
    const weights: NSAWeights = {
      gateWeight: get('gate_proj.weight'),
      gateBias: maybe('gate_proj.bias'),
      keyPE: maybe('compress.pe_k'),
      valuePE: maybe('compress.pe_v'),
      keyMLP: mlp('k'),
      valueMLP: mlp('v'),
    };
    this.nsa = new NativeSparseAttention(config.nsa, weights);
    this.#backend = backend;
    this.#invFreq = tensor(backend, ropeInvFreq({ dim: config.headDim, theta: config.ropeTheta }), [config.headDim / 2]);
  }

  createCache(options: LayerCacheOptions): NSACache {
    const { nKvHeads, headDim, vHeadDim, cmpBlock, cmpStride } = this.nsa.config;
    return new NSACache(this.#backend, {
      batchSize: options.batchSize,
      kvHeads: nKvHeads,
      keyDim: headDim,
      valueDim: vHeadDim,
      blockLength: cmpBlock,
      blockStride: cmpStride,
      compress: this.nsa.compress,
      maxCapacity: options.maxTokens,
      ...(options.step === undefined ? {} : { step: options.step }),
    });
  }

  async forward(x: Tensor, cache: LayerCache, signal?: AbortSignal): Promise<Tensor> {
    const fn = 'NativeSparseBlock.forward';
    if (!(cache instanceof NSACache)) throw new ConfigError({ fn, expected: 'the NSACache from createCache()', got: cache.constructor.name });
    throwIfAborted(signal, fn);
    const { nHeads: H, nKvHeads: Hkv, headDim: D, vHeadDim: Dv } = this.nsa.config;
    const [B = 0, S = 0] = x.shape;
    const { q: wq, k: wk, v: wv, o: wo } = this.#proj;
    using positions = this.#positions(cache.lengths, S); // i32 [B, S]
    using qFlat = await linear(x, wq.weight, wq.bias); // [B, S, H·D]
    using kFlat = await linear(x, wk.weight, wk.bias); // [B, S, Hkv·D]
    using vFlat = await linear(x, wv.weight, wv.bias); // [B, S, Hkv·Dv]
    using q0 = reshape(qFlat, [B, S, H, D]);
    using k0 = reshape(kFlat, [B, S, Hkv, D]);
    using v = reshape(vFlat, [B, S, Hkv, Dv]);
    using q = await rope(q0, positions, this.#invFreq, { layout: 'halfsplit' }); // [B, S, H, D]
    using k = await rope(k0, positions, this.#invFreq, { layout: 'halfsplit' }); // [B, S, Hkv, D]
    const { out } = await this.nsa.forward(q, k, v, x, { cache, ...(signal ? { signal } : {}) });
    using heads = out; // [B, S, H, Dv]
    using flat = reshape(heads, [B, S, H * Dv]);
    return await linear(flat, wo.weight, wo.bias); // [B, S, dim]
  }

  #positions(lengths: readonly number[], S: number): Tensor {
    const B = lengths.length;
    const values = new Int32Array(B * S);
    for (let b = 0; b < B; b++) for (let i = 0; i < S; i++) values[b * S + i] = (lengths[b] ?? 0) + i;
    return tensor(this.#backend, values, [B, S], { dtype: 'i32' });
  }

  /** Frees the RoPE table (the weights belong to the model's Weights). */
  dispose(): void {
    this.#invFreq.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
