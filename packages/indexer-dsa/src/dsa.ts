// DeepSeek Sparse Attention (DeepSeek-V3.2, spec §3): one MLA layer whose queries each attend
// only to the tokens its lightning indexer selects.
//
//   project(x)            MLA: q, the latent rows [c ‖ k_pe], the query latent qr
//   indexer keys          k_I = RoPE_halfsplit(LayerNorm(wk·x)), appended to the key cache
//   select                top-min(index_topk, p+1) of I[p, ·] per query
//   attend                MLA over the selected tokens only, through the attention core's
//                         sparseAttention (flash-style, never an S×T score matrix on the CPU)
//
// When index_topk covers every query's visible tokens, the selection is all of them and the
// layer is exactly dense causal MLA: it then runs MLA's dense path (and skips the scoring
// unless the caller inspects it).

import { type MLAAttendOptions, type MLAOrder, MLA, type MLAWeights, mlaWeightsFromRecord } from '@attnkit/attention-mla';
import type { AttentionImplementation, DispatchReport } from '@attnkit/attention-mha';
import type { CacheView } from '@attnkit/kvcache';
import { type Backend, BackendError, ShapeError, type Tensor, cast, formatShape, reshape, throwIfAborted } from '@attnkit/tensor-core';
import { DSACache, type DSACacheLike, type DSACacheOptions } from './cache.js';
import { type DSAConfigInput, type ResolvedDSAConfig, resolveDSAConfig } from './config.js';
import { type IndexerSelection, LightningIndexer } from './indexer.js';
import { checkImplementation } from './kernels/dispatch.js';
import type { IndexerImplementation } from './kernels/problem.js';
import { expectActivation } from './validate.js';
import { type LightningIndexerWeights, indexerWeightsFromRecord, validateIndexerWeights } from './weights.js';

export interface DSAWeights {
  readonly mla: MLAWeights;
  readonly indexer: LightningIndexerWeights;
}

export interface DSAOptions {
  /** Dispose the weight tensors with the layer (default false: the caller keeps them). */
  readonly ownsWeights?: boolean;
}

export interface DSARecordOptions extends DSAOptions {
  /** Common prefix of the layer's keys (`layers.3.attn.` or `model.layers.3.self_attn.`); the indexer's sit under `${prefix}indexer.`. */
  readonly prefix?: string;
}

export interface DSAForwardOptions {
  /**
   * The layer's caches (`DSACache`, or any latent-row cache plus an IndexerKeyCache of the same
   * lengths): this call's rows are appended to both; new tokens sit at positions lengths[b]….
   * Without caches the call is a standalone prefill from position 0.
   */
  readonly cache?: DSACacheLike;
  /** MLA's evaluation order (default `auto`: absorbed for decode, else the cost rule over S·K pairs). */
  readonly order?: MLAAttendOptions['order'];
  /** The attention core's implementation (default `auto`). */
  readonly implementation?: AttentionImplementation;
  /** The indexer's implementation (default `auto`: its fused kernel where one accepts the call). */
  readonly indexerImplementation?: IndexerImplementation;
  readonly signal?: AbortSignal;
}

export interface DSAInspectOptions extends DSAForwardOptions {
  /** Return the scores I [B, S, T] too (default true; O(S·T) memory). */
  readonly keepScores?: boolean;
}

/** A call with its selection exposed. Dispose it (y and the selection) when done. */
export interface DSAResult extends Disposable {
  /** [B, S, dim] */
  readonly y: Tensor;
  /** The indexer's scores and picks for every query of the call. */
  readonly index: IndexerSelection;
  /** True when attention ran over the selection; false when the selection was every visible key and MLA ran dense. */
  readonly sparse: boolean;
  readonly order: MLAOrder;
  /** Which attention-core implementation ran (and why a fused kernel declined). */
  readonly dispatch: DispatchReport;
  dispose(): void;
}

/**
 * One DSA layer. Create it with `DSA.create` (typed weights) or `DSA.fromRecord` (MLA's weights
 * and the indexer's under `indexer.`, DeepSeek or Hugging Face names).
 */
export class DSA implements Disposable {
  readonly config: ResolvedDSAConfig;
  readonly backend: Backend;
  readonly mla: MLA;
  readonly indexer: LightningIndexer;
  #disposed = false;

  private constructor(backend: Backend, config: ResolvedDSAConfig, mla: MLA, indexer: LightningIndexer) {
    this.backend = backend;
    this.config = config;
    this.mla = mla;
    this.indexer = indexer;
  }

  static async create(backend: Backend, config: DSAConfigInput, weights: DSAWeights, options: DSAOptions = {}): Promise<DSA> {
    const resolved = resolveDSAConfig(config);
    const ownsWeights = options.ownsWeights ?? false;
    // Every weight is checked before anything is allocated, so a refusal leaves the caller's tensors alone.
    validateIndexerWeights('DSA.create', weights.indexer, resolved.indexer, backend);
    const mla = await MLA.create(backend, resolved, weights.mla, { ownsWeights });
    try {
      return new DSA(backend, resolved, mla, LightningIndexer.create(backend, resolved.indexer, weights.indexer, { ownsWeights }));
    } catch (error) {
      mla.dispose();
      throw error;
    }
  }

  /** From one record: MLA's weights (`wq_a`, … / `q_a_proj.weight`, …) and the indexer's under `indexer.`. */
  static async fromRecord(backend: Backend, config: DSAConfigInput, record: Readonly<Record<string, Tensor>>, options: DSARecordOptions = {}): Promise<DSA> {
    const resolved = resolveDSAConfig(config);
    const prefix = options.prefix ?? '';
    const indexerPrefix = `${prefix}indexer.`;
    const mlaRecord: Record<string, Tensor> = {};
    for (const [key, t] of Object.entries(record)) if (!key.startsWith(indexerPrefix)) mlaRecord[key] = t;
    const weights: DSAWeights = {
      mla: mlaWeightsFromRecord(mlaRecord, resolved, { prefix }),
      indexer: indexerWeightsFromRecord(record, { prefix: indexerPrefix }),
    };
    return DSA.create(backend, resolved, weights, options);
  }

  /** The caches this layer appends to, sized from its config. */
  createCache(options: DSACacheOptions): DSACache {
    return new DSACache(this.backend, this.config, options);
  }

  /** y [B, S, dim] for x [B, S, dim]: project, append to both caches, select, attend. */
  async forward(x: Tensor, options: DSAForwardOptions = {}): Promise<Tensor> {
    const { y, index } = await this.#run('DSA.forward', x, options, false);
    index?.dispose();
    return y;
  }

  /** Like `forward`, also returning the indexer's scores and picks (the docs' visualiser reads these). */
  async forwardWithIndex(x: Tensor, options: DSAInspectOptions = {}): Promise<DSAResult> {
    const r = await this.#run('DSA.forwardWithIndex', x, options, true, options.keepScores ?? true);
    const { y, index } = r;
    if (!index) {
      y.dispose();
      throw new BackendError({ fn: 'DSA.forwardWithIndex', expected: 'a selection', got: 'none' });
    }
    const dispose = (): void => {
      y.dispose();
      index.dispose();
    };
    return { y, index, sparse: r.sparse, order: r.order, dispatch: r.dispatch, dispose, [Symbol.dispose]: dispose };
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.mla.dispose();
    this.indexer.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  async #run(
    fn: string,
    x: Tensor,
    options: DSAForwardOptions,
    inspect: boolean,
    keepScores = false,
  ): Promise<{ y: Tensor; index: IndexerSelection | null; sparse: boolean; order: MLAOrder; dispatch: DispatchReport }> {
    if (this.#disposed) throw new BackendError({ fn, expected: 'a live DSA layer', got: 'one after dispose()' });
    throwIfAborted(options.signal, fn);
    const [B, S] = expectActivation(fn, 'x', x, this.backend, this.config.dim);
    checkImplementation(fn, options.indexerImplementation ?? 'auto');
    const { cache } = options;
    if (cache) this.#checkCaches(fn, cache, B);
    const before = cache ? [...cache.latent.lengths] : new Array<number>(B).fill(0);

    using projection = await this.mla.project(x, before);
    const { queryLatent, positions } = projection;
    if (!queryLatent) throw new BackendError({ fn, expected: 'the query latent from MLA (qLoraRank > 0)', got: 'none' });
    using indexRows = await this.indexer.projectKeys(x, positions); // [B, S, 1, D_I]
    throwIfAborted(options.signal, fn);

    const { latentView, indexView, standalone } = await this.#append(cache, projection.kvRows, indexRows, before, S);
    let index: IndexerSelection | null = null;
    try {
      const T = Math.max(...latentView.lengths);
      const dense = this.config.indexTopk >= T; // every query keeps all it sees: exactly dense MLA
      if (!dense || inspect) {
        using queries = await this.indexer.projectQueries(x, queryLatent, positions);
        index = await this.indexer.select(queries, indexView, {
          keepScores,
          implementation: options.indexerImplementation ?? 'auto',
          ...(options.signal ? { signal: options.signal } : {}),
        });
      }
      const selectedKeys = dense ? null : index?.indices ?? null;
      const { y, order, dispatch } = await this.mla.attend(projection, latentView, {
        selectedKeys,
        distinctSelectedKeys: true, // a top-k's picks: distinct, in range; read where they lie
        ...(options.order === undefined ? {} : { order: options.order }),
        ...(options.implementation === undefined ? {} : { implementation: options.implementation }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      return { y, index, sparse: selectedKeys !== null, order, dispatch };
    } catch (error) {
      // A call that fails after its append takes its rows back out of both caches.
      index?.dispose();
      cache?.latent.truncate(before);
      cache?.indexKeys.truncate(before);
      throw error;
    } finally {
      standalone?.dispose();
    }
  }

  /** Appends the new rows to both caches (all or nothing), or builds the views of a standalone prefill. */
  async #append(
    cache: DSACacheLike | undefined,
    kvRows: Tensor,
    indexRows: Tensor,
    before: readonly number[],
    S: number,
  ): Promise<{ latentView: CacheView; indexView: CacheView; standalone: Tensor | null }> {
    const B = before.length;
    if (!cache) {
      const lengths = new Array<number>(B).fill(S);
      const { indexPrecision, indexer } = this.config;
      // As a cache would store them: fp8 precision keeps fp8 keys with block scales.
      const stored = indexPrecision === 'fp8' ? await cast(indexRows, 'fp8e4m3', { blockSize: indexer.quantBlockSize }) : reshape(indexRows, indexRows.shape);
      return {
        latentView: { keys: kvRows, values: null, valueDim: this.config.kvLoraRank, rowMap: null, lengths },
        indexView: { keys: stored, values: null, rowMap: null, lengths },
        standalone: stored,
      };
    }
    const latentView = await cache.latent.updateAndFetch(kvRows, null);
    try {
      return { latentView, indexView: await cache.indexKeys.updateAndFetch(indexRows, null), standalone: null };
    } catch (error) {
      cache.latent.truncate(before);
      throw error;
    }
  }

  #checkCaches(fn: string, cache: DSACacheLike, B: number): void {
    const { latent, indexKeys } = cache;
    if (latent.batchSize !== B) throw new ShapeError({ fn, expected: `a latent cache of batch size ${B}`, got: String(latent.batchSize) });
    this.indexer.checkCache(fn, indexKeys, B);
    const a = latent.lengths;
    const b = indexKeys.lengths;
    if (a.some((len, i) => len !== b[i])) {
      throw new ShapeError({ fn, expected: 'the latent and indexer key caches to hold the same tokens', got: `lengths ${formatShape(a)} and ${formatShape(b)}` });
    }
  }
}
