// The variants the soak test decodes with: each one a layer with seeded random weights, its
// cache, and one decode step. Tiny dims: the soak is about what accumulates, not about speed.
// Axis letters: B batch (1), S new tokens (1 per step), H heads, D head dim.

import { GroupedQueryAttention, MultiQueryAttention } from '@attnkit/attention-gqa';
import { type AttentionLayer, MultiHeadAttention, resolveAttentionConfig } from '@attnkit/attention-mha';
import { MLA, type MLAConfigInput, resolveMLAConfig } from '@attnkit/attention-mla';
import { NativeSparseAttention, type NSAConfig } from '@attnkit/attention-nsa';
import { DSA, type DSAConfigInput, resolveDSAConfig } from '@attnkit/indexer-dsa';
import { ContiguousKVCache, type KVCache, MLALatentCache, NSACache, PagePool, PagedKVCache, SlidingWindowKVCache } from '@attnkit/kvcache';
import { type Backend, type Tensor, tensor } from '@attnkit/tensor-core';
import type { SeededRandom } from '@attnkit/testkit';

export interface SoakVariant extends Disposable {
  readonly name: string;
  /** Tokens the cache holds. */
  readonly length: number;
  /** Bytes the cache holds (its own report). */
  readonly nbytes: number;
  /** Decodes one token: appends it to the cache and disposes the output. */
  step(): Promise<void>;
  /** Rolls the cache back to `length` tokens. */
  truncate(length: number): void;
}

/** Weight tensors of a record, owned by the variant. */
class Weights implements Disposable {
  readonly record: Record<string, Tensor> = {};
  readonly #backend: Backend;
  readonly #rng: SeededRandom;

  constructor(backend: Backend, rng: SeededRandom) {
    this.#backend = backend;
    this.#rng = rng;
  }

  /** A [rows, cols] matrix scaled by 1/√cols (or a vector when cols is 0, around `around`). */
  add(name: string, rows: number, cols: number, around = 0): Tensor {
    const values = cols === 0 ? this.#rng.normalArray(rows, 0.1).map((v) => v + around) : this.#rng.normalArray(rows * cols, 1 / Math.sqrt(cols));
    const t = tensor(this.#backend, values, cols === 0 ? [rows] : [rows, cols]);
    this.record[name] = t;
    return t;
  }

  [Symbol.dispose](): void {
    for (const t of Object.values(this.record)) t.dispose();
  }
}

function input(backend: Backend, rng: SeededRandom, shape: readonly number[]): Tensor {
  return tensor(backend, rng.normalArray(shape.reduce((a, b) => a * b, 1)), shape);
}

/** What a variant needs of its cache: every kvcache kind has it, and so has DSA's pair of caches. */
interface SoakCache {
  readonly lengths: readonly number[];
  readonly nbytes: number;
  truncate(length: number): void;
  dispose(): void;
}

/**
 * The skeleton every variant shares: `step` decodes one token through `cache`; disposing the
 * variant releases the cache, then what it `owns`, in order (a page pool, the layer, the weights).
 */
function soakVariant(name: string, cache: SoakCache, step: () => Promise<void>, owns: readonly Disposable[]): SoakVariant {
  return {
    name,
    get length() {
      return cache.lengths[0] ?? 0;
    },
    get nbytes() {
      return cache.nbytes;
    },
    step,
    truncate(length) {
      cache.truncate(length);
    },
    [Symbol.dispose]() {
      cache.dispose();
      for (const owned of owns) owned[Symbol.dispose]();
    },
  };
}

/** A layer that maps x [B, S, dim] to y through a cache (MHA / GQA / MQA, MLA, DSA). */
interface CachedLayer<C> {
  forward(x: Tensor, options: { cache: C }): Promise<Tensor>;
}

/** One decode step of `layer`: a random token x [1, 1, dim] in, the output disposed. */
function decodeStep<C>(backend: Backend, rng: SeededRandom, layer: CachedLayer<C>, cache: C, dim: number): () => Promise<void> {
  return async () => {
    using x = input(backend, rng, [1, 1, dim]);
    using y = await layer.forward(x, { cache });
    void y;
  };
}

/** MHA, GQA or MQA: an AttentionLayer and a KV cache of any kind. */
function projectedLayer(name: string, backend: Backend, rng: SeededRandom, make: (record: Record<string, Tensor>) => AttentionLayer, cache: KVCache, extra: Disposable | null, dim: number): SoakVariant {
  const config = { dim, nHeads: 4, nKvHeads: name === 'MHA' ? 4 : name === 'GQA' ? 2 : 1 };
  const c = resolveAttentionConfig(name, config);
  const weights = new Weights(backend, rng);
  weights.add('wq', c.nHeads * c.headDim, dim);
  weights.add('wk', c.nKvHeads * c.headDim, dim);
  weights.add('wv', c.nKvHeads * c.vHeadDim, dim);
  weights.add('wo', dim, c.nHeads * c.vHeadDim);
  const layer = make(weights.record);
  return soakVariant(`${name} (${cache.kind} cache)`, cache, decodeStep(backend, rng, layer, cache, dim), extra ? [extra, weights] : [weights]);
}

const DIM = 16;

export function mhaVariant(backend: Backend, rng: SeededRandom, capacity: number): SoakVariant {
  const cache = new ContiguousKVCache(backend, { batchSize: 1, kvHeads: 4, keyDim: 4, maxCapacity: capacity, step: 16 });
  return projectedLayer('MHA', backend, rng, (r) => new MultiHeadAttention({ dim: DIM, nHeads: 4, rope: { layout: 'halfsplit' } }, r), cache, null, DIM);
}

export function gqaVariant(backend: Backend, rng: SeededRandom, capacity: number): SoakVariant {
  const pool = new PagePool(backend, { kvHeads: 2, keyDim: 4, pageSize: 8, numPages: Math.ceil(capacity / 8), dtype: 'int8' });
  const cache = new PagedKVCache(pool, { batchSize: 1 });
  return projectedLayer('GQA', backend, rng, (r) => new GroupedQueryAttention({ dim: DIM, nHeads: 4, nKvHeads: 2, rope: { layout: 'interleaved' } }, r), cache, pool, DIM);
}

export function mqaVariant(backend: Backend, rng: SeededRandom): SoakVariant {
  const cache = new SlidingWindowKVCache(backend, { batchSize: 1, kvHeads: 1, keyDim: 4, window: 8, sinkTokens: 2, maxChunk: 24, dtype: 'f16' });
  return projectedLayer('MQA', backend, rng, (r) => new MultiQueryAttention({ dim: DIM, nHeads: 4, window: 8, rope: { layout: 'halfsplit' } }, r), cache, null, DIM);
}

const MLA_CONFIG: MLAConfigInput = { dim: DIM, nHeads: 2, qLoraRank: 8, kvLoraRank: 8, qkNopeHeadDim: 4, qkRopeHeadDim: 4, vHeadDim: 4, maxSeqLen: 4096 };

function mlaRecord(weights: Weights, c: ReturnType<typeof resolveMLAConfig>, prefix = ''): void {
  const { dim, nHeads: H, qLoraRank: Cq, kvLoraRank: C, qkNopeHeadDim: dn, qkRopeHeadDim: dr, vHeadDim: dv } = c;
  weights.add(`${prefix}wq_a`, Cq, dim);
  weights.add(`${prefix}q_norm`, Cq, 0, 1);
  weights.add(`${prefix}wq_b`, H * (dn + dr), Cq);
  weights.add(`${prefix}wkv_a`, C + dr, dim);
  weights.add(`${prefix}kv_norm`, C, 0, 1);
  weights.add(`${prefix}wkv_b`, H * (dn + dv), C);
  weights.add(`${prefix}wo`, dim, H * dv);
}

export async function mlaVariant(backend: Backend, rng: SeededRandom, capacity: number): Promise<SoakVariant> {
  const weights = new Weights(backend, rng);
  mlaRecord(weights, resolveMLAConfig(MLA_CONFIG));
  const layer = await MLA.fromRecord(backend, MLA_CONFIG, weights.record);
  const cache = new MLALatentCache(backend, { batchSize: 1, kvLoraRank: 8, ropeDim: 4, maxCapacity: capacity, step: 16, dtype: 'bf16' });
  return soakVariant('MLA (latent cache, absorbed decode)', cache, decodeStep(backend, rng, layer, cache, DIM), [layer, weights]);
}

const NSA_CONFIG: NSAConfig = { nHeads: 4, nKvHeads: 2, headDim: 8, gateDim: 6, cmpBlock: 8, cmpStride: 4, slcBlock: 8, nSelected: 3, nInit: 1, nLocal: 1, window: 8 };

export function nsaVariant(backend: Backend, rng: SeededRandom, capacity: number): SoakVariant {
  const weights = new Weights(backend, rng);
  const layer = new NativeSparseAttention(NSA_CONFIG, { gateWeight: weights.add('gate', 12, 6), gateBias: weights.add('gate_bias', 12, 0) });
  const cache = new NSACache(backend, { batchSize: 1, kvHeads: 2, keyDim: 8, valueDim: 8, blockLength: 8, blockStride: 4, compress: layer.compress, maxCapacity: capacity, step: 16 });
  const step = async (): Promise<void> => {
    using q = input(backend, rng, [1, 1, 4, 8]);
    using k = input(backend, rng, [1, 1, 2, 8]);
    using v = input(backend, rng, [1, 1, 2, 8]);
    using x = input(backend, rng, [1, 1, 6]);
    const { out } = await layer.forward(q, k, v, x, { cache });
    out.dispose();
  };
  return soakVariant('NSA (NSA cache)', cache, step, [weights]);
}

const DSA_CONFIG: DSAConfigInput = { ...MLA_CONFIG, indexNHeads: 2, indexHeadDim: 8, indexTopk: 6, yarn: { originalSeqLen: 4096 } };

export async function dsaVariant(backend: Backend, rng: SeededRandom, capacity: number): Promise<SoakVariant> {
  const c = resolveDSAConfig(DSA_CONFIG);
  const weights = new Weights(backend, rng);
  mlaRecord(weights, c);
  weights.add('indexer.wq_b', c.indexNHeads * c.indexHeadDim, c.qLoraRank);
  weights.add('indexer.wk', c.indexHeadDim, c.dim);
  weights.add('indexer.k_norm.weight', c.indexHeadDim, 0, 1);
  weights.add('indexer.k_norm.bias', c.indexHeadDim, 0);
  weights.add('indexer.weights_proj', c.indexNHeads, c.dim);
  const layer = await DSA.fromRecord(backend, DSA_CONFIG, weights.record);
  const cache = layer.createCache({ batchSize: 1, maxCapacity: capacity, step: 16 });
  return soakVariant('DSA (latent + indexer key caches)', cache, decodeStep(backend, rng, layer, cache, DIM), [layer, weights]);
}
