// DeepSeek-V3.2's lightning indexer (spec §3, with the Nov-2025 fix): for every query token it
// scores each visible cached token with a few cheap ReLU heads and keeps the top k, which is all
// MLA then attends to.
//
//   q_I = (wq_b · qr).view(H_I, D_I)          qr = q_norm(wq_a·x), MLA's query latent
//   k_I = LayerNorm(wk · x)                   one key per token, shared by every head
//   RoPE on the FIRST dr channels of both, half-split pairs (i, i + dr/2) — [rope | nope]
//   w_j = weights_proj(x)_j · H_I^−1/2 · D_I^−1/2      (may be negative; no ReLU on w)
//   I[p, t] = Σ_j w_j · ReLU(q_I,j · k_I,t)   for visible t ≤ p, −∞ otherwise
//   S_p = top-min(index_topk, p+1) of I[p, ·], ties toward the lower index
//
// With indexPrecision 'fp8' queries and keys are also Hadamard-rotated and quantised to
// fp8-e4m3 (block scales over 128 values), as deployed; the key cache then stores fp8.
//
// Axis letters: B batch, S new tokens, T keys, H_I heads, D_I head dim, Cq query latent, K picks.

import { type CacheView, IndexerKeyCache, type IndexerKeyCacheOptions } from '@attnkit/kvcache';
import {
  type Backend,
  BackendError,
  CapacityError,
  ConfigError,
  ShapeError,
  type Tensor,
  affine,
  cast,
  formatShape,
  layerNorm,
  linear,
  matmul,
  reshape,
  rope,
  ropeInvFreq,
  tensor,
  throwIfAborted,
} from '@attnkit/tensor-core';
import { type LightningIndexerConfigInput, type ResolvedIndexerConfig, resolveIndexerConfig } from './config.js';
import { hadamardTensor } from './hadamard.js';
import { type IndexerDispatchReport, checkImplementation, dispatchIndexer } from './kernels/dispatch.js';
import type { IndexerImplementation, IndexerScoreProblem } from './kernels/problem.js';
import { expectActivation, expectPositions, startPositionsOf } from './validate.js';
import { type IndexerWeightRecordOptions, type LightningIndexerWeights, indexerWeightTensors, indexerWeightsFromRecord, validateIndexerWeights } from './weights.js';

export interface LightningIndexerOptions {
  /** Dispose the weight tensors with the indexer (default false: the caller keeps them). */
  readonly ownsWeights?: boolean;
}

/** The indexer's queries for the S new tokens of a call. Dispose after `select`. */
export interface IndexerQueries extends Disposable {
  /** f32 [B, S, H_I, D_I]: q_I, first dr channels rotated (fp8 precision: rotated, quantised, dequantised). */
  readonly q: Tensor;
  /** f32 [B, S, H_I]: w_j = weights_proj(x)_j · H_I^−1/2 · D_I^−1/2. */
  readonly weights: Tensor;
  dispose(): void;
}

export interface IndexerSelectOptions {
  /** Also return the scores I [B, S, T] (for inspection and tests; O(S·T) memory). Default false. */
  readonly keepScores?: boolean;
  /** `auto` (default): the fused kernel of this backend if there is one, else the composed fallback. */
  readonly implementation?: IndexerImplementation;
  readonly signal?: AbortSignal;
}

export interface IndexerForwardOptions extends IndexerSelectOptions {
  /** The indexer's key cache: this call's keys are appended; new tokens sit at positions cache.lengths[b]… Without it, a prefill from position 0. */
  readonly cache?: IndexerKeyCache;
}

/** The tokens each query keeps. Dispose it when done. */
export interface IndexerSelection extends Disposable {
  /** i32 [B, S, 1, K]: each query's picks, best first; past min(K, p+1) picks, padding (−1 or a key the query cannot see). */
  readonly indices: Tensor;
  /** K = min(index_topk, T): the width of `indices`. */
  readonly topk: number;
  /** f32 [B, S, T]: I[p, t], −∞ where t is not visible; null unless `keepScores`. */
  readonly scores: Tensor | null;
  /** Absolute position of each sequence's first query (query i of b sits at startPositions[b] + i). */
  readonly startPositions: readonly number[];
  /** Keys per sequence (T = the longest). */
  readonly lengths: readonly number[];
  /** index_topk ≥ every query's visible count: the selection is every visible key, i.e. dense causal attention. */
  readonly coversAllVisible: boolean;
  readonly dispatch: IndexerDispatchReport;
  dispose(): void;
}

export class LightningIndexer implements Disposable {
  readonly config: ResolvedIndexerConfig;
  readonly backend: Backend;
  readonly weights: LightningIndexerWeights;
  /** f32 [dr/2]: RoPE frequencies (MLA's, YaRN-interpolated when active). */
  readonly #invFreq: Tensor;
  /** f32 [D_I, D_I] Hadamard rotation, fp8 precision only. */
  readonly #hadamard: Tensor | null;
  readonly #ownsWeights: boolean;
  #disposed = false;

  private constructor(backend: Backend, config: ResolvedIndexerConfig, weights: LightningIndexerWeights, ownsWeights: boolean) {
    this.backend = backend;
    this.config = config;
    this.weights = weights;
    this.#ownsWeights = ownsWeights;
    const { qkRopeHeadDim: dr, ropeTheta, yarn, yarnActive, indexHeadDim: DI } = config;
    this.#invFreq = tensor(backend, ropeInvFreq({ dim: dr, theta: ropeTheta, yarn: yarnActive ? yarn : null }), [dr / 2]);
    this.#hadamard = config.indexPrecision === 'fp8' ? hadamardTensor(backend, DI) : null;
  }

  /** An indexer over typed weights, checked against the config. */
  static create(backend: Backend, config: LightningIndexerConfigInput, weights: LightningIndexerWeights, options: LightningIndexerOptions = {}): LightningIndexer {
    const resolved = resolveIndexerConfig(config);
    if (backend.isDisposed) throw new BackendError({ fn: 'LightningIndexer.create', expected: 'a live backend', got: `${backend.info.name} after dispose()` });
    validateIndexerWeights('LightningIndexer.create', weights, resolved, backend);
    return new LightningIndexer(backend, resolved, weights, options.ownsWeights ?? false);
  }

  /** From a record keyed `wq_b`, `wk`, `k_norm.weight`, `k_norm.bias`, `weights_proj` (`.weight` optional) under `prefix`. */
  static fromRecord(
    backend: Backend,
    config: LightningIndexerConfigInput,
    record: Readonly<Record<string, Tensor>>,
    options: LightningIndexerOptions & IndexerWeightRecordOptions = {},
  ): LightningIndexer {
    return LightningIndexer.create(backend, config, indexerWeightsFromRecord(record, options), options);
  }

  /** A key cache made for this indexer: D_I wide; fp8e4m3 with 128-value scales under fp8 precision, else `dtype` (f32). */
  createCache(options: Omit<IndexerKeyCacheOptions, 'keyDim' | 'blockSize'>): IndexerKeyCache {
    const { indexHeadDim: DI, indexPrecision, quantBlockSize } = this.config;
    if (indexPrecision === 'fp8') {
      if (options.dtype !== undefined && options.dtype !== 'fp8e4m3') {
        throw new ConfigError({ fn: 'LightningIndexer.createCache', expected: 'dtype fp8e4m3 (or none) under indexPrecision fp8', got: options.dtype });
      }
      return new IndexerKeyCache(this.backend, { ...options, keyDim: DI, dtype: 'fp8e4m3', blockSize: quantBlockSize });
    }
    return new IndexerKeyCache(this.backend, { ...options, keyDim: DI });
  }

  /**
   * Spec §3 steps 1–3 for the keys: k_I = LayerNorm(wk·x), RoPE (half-split) on its first dr
   * channels at `positions` (i32 [B, S] or [S]); fp8 precision also rotates it by the Hadamard
   * matrix. f32 [B, S, 1, D_I]: the rows to append to the key cache.
   */
  async projectKeys(x: Tensor, positions: Tensor): Promise<Tensor> {
    const fn = 'LightningIndexer.projectKeys';
    this.#assertUsable(fn);
    const { dim, indexHeadDim: DI, qkRopeHeadDim: dr, normEps } = this.config;
    const [B, S] = expectActivation(fn, 'x', x, this.backend, dim);
    expectPositions(fn, positions, this.backend, B, S);
    const w = this.weights;
    using projected = await linear(x, w.wk); // [B, S, D_I]
    using normed = await layerNorm(projected, w.kNormWeight, w.kNormBias, normEps); // [B, S, D_I]
    using rows = reshape(normed, [B, S, 1, DI]); // [B, S, 1, D_I]
    const rotated = await rope(rows, positions, this.#invFreq, { layout: 'halfsplit', offset: 0, width: dr }); // [B, S, 1, D_I]
    if (!this.#hadamard) return rotated;
    using unrotated = rotated;
    return await matmul(unrotated, this.#hadamard); // [B, S, 1, D_I]: H·k (H symmetric)
  }

  /**
   * Spec §3 steps 1–4 for the queries: q_I = wq_b·qr per head with its first dr channels rotated
   * (half-split), and the head weights w_j. `queryLatent` is MLA's qr [B, S, Cq].
   */
  async projectQueries(x: Tensor, queryLatent: Tensor, positions: Tensor): Promise<IndexerQueries> {
    const fn = 'LightningIndexer.projectQueries';
    this.#assertUsable(fn);
    const { dim, qLoraRank: Cq, headWeightScale } = this.config;
    const [B, S] = expectActivation(fn, 'x', x, this.backend, dim);
    const [Bq, Sq] = expectActivation(fn, 'queryLatent', queryLatent, this.backend, Cq);
    if (Bq !== B || Sq !== S) throw new ShapeError({ fn, expected: `queryLatent of shape [${B}, ${S}, ${Cq}] (like x)`, got: formatShape(queryLatent.shape) });
    expectPositions(fn, positions, this.backend, B, S);
    const q = await this.#queryHeads(queryLatent, positions, B, S); // [B, S, H_I, D_I]
    try {
      using raw = await linear(x, this.weights.weightsProj); // [B, S, H_I]
      const weights = await affine(raw, headWeightScale); // [B, S, H_I]
      const dispose = (): void => {
        q.dispose();
        weights.dispose();
      };
      return { q, weights, dispose, [Symbol.dispose]: dispose };
    } catch (error) {
      q.dispose();
      throw error;
    }
  }

  /**
   * Spec §3 steps 5–6: scores of the queries over every key of `view` (the key cache after this
   * call's keys were appended: each sequence ends with the S queries' own keys) and the top
   * min(index_topk, p+1) of each query.
   */
  async select(queries: IndexerQueries, view: CacheView, options: IndexerSelectOptions = {}): Promise<IndexerSelection> {
    const fn = 'LightningIndexer.select';
    this.#assertUsable(fn);
    throwIfAborted(options.signal, fn);
    const { indexNHeads: HI, indexHeadDim: DI, indexTopk } = this.config;
    const { q, weights } = queries;
    q.assertAlive(fn);
    weights.assertAlive(fn);
    const [B = 0, S = 0] = q.shape;
    if (q.rank !== 4 || q.shape[2] !== HI || q.shape[3] !== DI || weights.rank !== 3 || weights.shape[0] !== B || weights.shape[1] !== S || weights.shape[2] !== HI) {
      throw new ShapeError({ fn, expected: `queries q [B, S, ${HI}, ${DI}] and weights [B, S, ${HI}]`, got: `${formatShape(q.shape)} and ${formatShape(weights.shape)}` });
    }
    const lengths = this.#validateView(fn, view, B, S);
    const T = Math.max(...lengths);
    const topk = Math.min(indexTopk, T);
    const problem: IndexerScoreProblem = { fn, B, S, heads: HI, headDim: DI, T, lengths, topk, keepScores: options.keepScores ?? false, signal: options.signal };
    const { indices, scores, dispatch } = await dispatchIndexer(this.backend, { q, weights, keys: view.keys }, problem, options.implementation ?? 'auto');
    const dispose = (): void => {
      indices.dispose();
      scores?.dispose();
    };
    return {
      indices,
      topk,
      scores,
      startPositions: lengths.map((len) => len - S),
      lengths,
      coversAllVisible: indexTopk >= T,
      dispatch,
      dispose,
      [Symbol.dispose]: dispose,
    };
  }

  /**
   * All stages for x [B, S, dim] and MLA's query latent [B, S, Cq]: project the keys, append
   * them to the cache (or use them alone: a prefill from position 0), project the queries and
   * select. A call that fails after its append takes its keys back out.
   */
  async forward(x: Tensor, queryLatent: Tensor, options: IndexerForwardOptions = {}): Promise<IndexerSelection> {
    const fn = 'LightningIndexer.forward';
    this.#assertUsable(fn);
    throwIfAborted(options.signal, fn);
    const [B, S] = expectActivation(fn, 'x', x, this.backend, this.config.dim);
    checkImplementation(fn, options.implementation ?? 'auto');
    const { cache } = options;
    if (cache) this.checkCache(fn, cache, B);
    const starts = cache ? [...cache.lengths] : new Array<number>(B).fill(0);
    using positions = tensor(this.backend, startPositionsOf(fn, starts, S, this.config.maxSeqLen), [B, S], { dtype: 'i32' }); // i32 [B, S]
    using keys = await this.projectKeys(x, positions); // [B, S, 1, D_I]
    using queries = await this.projectQueries(x, queryLatent, positions);
    if (!cache) {
      using stored = this.config.indexPrecision === 'fp8' ? await cast(keys, 'fp8e4m3', { blockSize: this.config.quantBlockSize }) : reshape(keys, keys.shape);
      return await this.select(queries, { keys: stored, values: null, rowMap: null, lengths: new Array<number>(B).fill(S) }, options);
    }
    const view = await cache.updateAndFetch(keys, null);
    try {
      return await this.select(queries, view, options);
    } catch (error) {
      cache.truncate(starts);
      throw error;
    }
  }

  /** Throws unless `cache` is an indexer key cache this indexer can use (width, batch size, fp8 storage under fp8 precision). */
  checkCache(fn: string, cache: IndexerKeyCache, batchSize: number): void {
    const { indexHeadDim: DI, indexPrecision, quantBlockSize } = this.config;
    if (cache.keyDim !== DI) throw new ShapeError({ fn, expected: `an indexer key cache of width indexHeadDim ${DI}`, got: String(cache.keyDim) });
    if (cache.batchSize !== batchSize) throw new ShapeError({ fn, expected: `an indexer key cache of batch size ${batchSize}`, got: String(cache.batchSize) });
    if (indexPrecision === 'fp8' && (cache.dtype !== 'fp8e4m3' || cache.blockSize !== quantBlockSize)) {
      throw new ConfigError({ fn, expected: `an fp8e4m3 key cache with ${quantBlockSize}-value scale blocks under indexPrecision fp8`, got: `${cache.dtype} (block ${cache.blockSize})` });
    }
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#invFreq.dispose();
    this.#hadamard?.dispose();
    if (this.#ownsWeights) for (const t of indexerWeightTensors(this.weights)) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** q_I [B, S, H_I, D_I] from qr: wq_b per head, RoPE on the first dr channels; fp8 precision: rotated, quantised per block, dequantised. */
  async #queryHeads(queryLatent: Tensor, positions: Tensor, B: number, S: number): Promise<Tensor> {
    const { indexNHeads: HI, indexHeadDim: DI, qkRopeHeadDim: dr, quantBlockSize } = this.config;
    using flat = await linear(queryLatent, this.weights.wqB); // [B, S, H_I·D_I]
    using heads = reshape(flat, [B, S, HI, DI]); // [B, S, H_I, D_I]
    const roped = await rope(heads, positions, this.#invFreq, { layout: 'halfsplit', offset: 0, width: dr }); // [B, S, H_I, D_I]
    if (!this.#hadamard) return roped;
    using unrotated = roped;
    using rotated = await matmul(unrotated, this.#hadamard); // [B, S, H_I, D_I]: H·q per head
    // act_quant per block of (≤) 128 values of each head, then back: the values fp8_index multiplies.
    using quantised = await cast(rotated, 'fp8e4m3', { blockSize: quantBlockSize });
    return await cast(quantised, 'f32');
  }

  #assertUsable(fn: string): void {
    if (this.#disposed) throw new BackendError({ fn, expected: 'a live LightningIndexer', got: 'one after dispose()' });
  }

  /** A contiguous key view [B, Tcap, 1, D_I] whose sequences each end with the S queries' keys; returns its lengths. */
  #validateView(fn: string, view: CacheView, B: number, S: number): readonly number[] {
    const { indexHeadDim: DI } = this.config;
    const keys = view.keys;
    keys.assertAlive(fn);
    if (keys.backend !== this.backend) throw new BackendError({ fn, expected: `keys on ${this.backend.info.name}`, got: `a tensor on ${keys.backend.info.name}` });
    if (view.rowMap) throw new ConfigError({ fn, expected: 'a contiguous key view (IndexerKeyCache), no rowMap', got: 'a row-pool view' });
    if (keys.rank !== 4 || keys.shape[0] !== B || keys.shape[2] !== 1 || keys.shape[3] !== DI) {
      throw new ShapeError({ fn, expected: `keys [${B}, Tcap, 1, ${DI}]`, got: formatShape(keys.shape) });
    }
    const lengths = [...view.lengths];
    if (lengths.length !== B) throw new ShapeError({ fn, expected: `${B} sequence lengths in the view`, got: String(lengths.length) });
    const capacity = keys.shape[1] ?? 0;
    for (const [b, len] of lengths.entries()) {
      if (!Number.isInteger(len) || len < S || len > capacity) {
        throw new CapacityError({ fn, expected: `sequence ${b} to hold its ${S} new keys and at most ${capacity} (append the keys first)`, got: `length ${len}` });
      }
    }
    return lengths;
  }
}
