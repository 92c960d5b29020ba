// DeepSeek-V2/V3 Multi-head Latent Attention (spec §2), one layer: projections, decoupled RoPE,
// the latent cache, and attention in either evaluation order through the shared core of
// @attnkit/attention-mha.
//
// A call runs in three stages, each public so that DeepSeek Sparse Attention can slot its
// indexer in between (it reads the query latent and hands back per-query key indices):
//
//   project(x)        → q [B,S,H,dn+dr], the rows to cache [B,S,1,C+dr], the query latent
//   cache.updateAndFetch(rows)  → the view of every cached row
//   attend(projection, view)    → y [B,S,dim], naive or absorbed, dense or sparse

import type { AttentionImplementation, DispatchReport } from '@attnkit/attention-mha';
import type { CacheView, KVCache } from '@attnkit/kvcache';
import {
  type Backend,
  BackendError,
  CapacityError,
  ConfigError,
  DTypeError,
  ShapeError,
  type Tensor,
  concat,
  formatShape,
  linear,
  reshape,
  rmsNorm,
  rope,
  ropeInvFreq,
  slice,
  tensor,
  throwIfAborted,
} from '@attnkit/tensor-core';
import { type AbsorbedWeights, attendAbsorbed, prepareAbsorbedWeights } from './absorbed.js';
import { type MLAConfigInput, type ResolvedMLAConfig, resolveMLAConfig } from './config.js';
import { type MLAOrder, chooseOrder } from './cost.js';
import { dim } from './dims.js';
import { attendNaive } from './naive.js';
import { type MLAWeightRecordOptions, type MLAWeights, mlaWeightsFromRecord, validateMLAWeights, weightTensors } from './weights.js';

export interface MLAOptions {
  /** Dispose the weight tensors with the layer (default false: the caller keeps them). */
  readonly ownsWeights?: boolean;
}

/** What `project` computes for the S new tokens of a call. Dispose it after `attend`. */
export interface MLAProjection extends Disposable {
  /** Absolute position of the first new token of each sequence (B numbers). */
  readonly startPositions: readonly number[];
  /** i32 [B, S]: absolute position of every new token. */
  readonly positions: Tensor;
  /** `[B, S, Cq]`: the query latent q_norm(wq_a · x) the DSA indexer reads; null when qLoraRank is 0. */
  readonly queryLatent: Tensor | null;
  /** `[B, S, H, dn+dr]`: queries, [nope | rope] per head, the rope slice rotated (interleaved pairs). */
  readonly q: Tensor;
  /** `[B, S, 1, C+dr]`: the rows to cache, [kv_norm(c) ‖ RoPE(k_pe)] (k_pe shared by all heads, not normalised). */
  readonly kvRows: Tensor;
  dispose(): void;
}

export interface MLAAttendOptions {
  /** `auto` (default): absorbed for decode, else the cheaper order by the cost rule in cost.ts. */
  readonly order?: 'auto' | MLAOrder;
  /**
   * Sparse MLA (DSA): i32 [B, S, 1, K] logical key indices each query may attend to (−1 for
   * none); causality still applies. Without it every causally visible key is attended.
   */
  readonly selectedKeys?: Tensor | null;
  /**
   * The caller guarantees each list's keys are distinct and in [−1, T) (a top-k's output): the
   * attention core may then read the list on the device instead of reading it back to check it
   * (`distinctIndices` of sparseAttention). Default false.
   */
  readonly distinctSelectedKeys?: boolean;
  /** The attention core's implementation (default `auto`: its fused kernel where one accepts the call). */
  readonly implementation?: AttentionImplementation;
  readonly signal?: AbortSignal;
}

export interface MLAForwardOptions extends MLAAttendOptions {
  /**
   * The latent cache (e.g. `MLALatentCache` of @attnkit/kvcache): this call's rows are appended
   * and attention reads every row it holds. New tokens sit at positions cache.lengths[b]…
   * Without a cache the call is a standalone prefill from position 0.
   */
  readonly cache?: KVCache;
}

export interface MLAAttendResult {
  /** [B, S, dim]. */
  readonly y: Tensor;
  readonly order: MLAOrder;
  /** Which attention-core implementation ran, and why a fused kernel declined if one did. */
  readonly dispatch: DispatchReport;
}

/**
 * One MLA layer. Create it with `MLA.create` (typed weights) or `MLA.fromRecord` (a name →
 * tensor record under DeepSeek's or Hugging Face's names); both check the weights against
 * the config and prepare the absorbed weights once.
 */
export class MLA implements Disposable {
  readonly config: ResolvedMLAConfig;
  readonly backend: Backend;
  readonly weights: MLAWeights;
  readonly #absorbed: AbsorbedWeights;
  /** f32 [dr/2]: RoPE frequencies, YaRN-interpolated when active. */
  readonly #invFreq: Tensor;
  /** f32 [1, H, 1] ones: broadcasts the shared rope key to every head in the naive order. */
  readonly #headOnes: Tensor;
  readonly #ownsWeights: boolean;
  #disposed = false;

  private constructor(backend: Backend, config: ResolvedMLAConfig, weights: MLAWeights, absorbed: AbsorbedWeights, invFreq: Tensor, headOnes: Tensor, ownsWeights: boolean) {
    this.backend = backend;
    this.config = config;
    this.weights = weights;
    this.#absorbed = absorbed;
    this.#invFreq = invFreq;
    this.#headOnes = headOnes;
    this.#ownsWeights = ownsWeights;
  }

  static async create(backend: Backend, config: MLAConfigInput, weights: MLAWeights, options: MLAOptions = {}): Promise<MLA> {
    const resolved = resolveMLAConfig(config);
    if (backend.isDisposed) throw new BackendError({ fn: 'MLA.create', expected: 'a live backend', got: `${backend.info.name} after dispose()` });
    validateMLAWeights('MLA.create', weights, resolved, backend);
    const { qkRopeHeadDim: dr, yarn, yarnActive, nHeads: H } = resolved;
    const invFreq = tensor(backend, ropeInvFreq({ dim: dr, theta: resolved.ropeTheta, yarn: yarnActive ? yarn : null }), [dr / 2]);
    const headOnes = tensor(backend, new Float32Array(H).fill(1), [1, H, 1]);
    try {
      const absorbed = await prepareAbsorbedWeights(weights.wkvB, resolved);
      return new MLA(backend, resolved, weights, absorbed, invFreq, headOnes, options.ownsWeights ?? false);
    } catch (error) {
      invFreq.dispose();
      headOnes.dispose();
      throw error;
    }
  }

  /** From a record keyed by DeepSeek (`wq_a`, `wkv_b`, …) or Hugging Face (`q_a_proj.weight`, …) names. */
  static async fromRecord(
    backend: Backend,
    config: MLAConfigInput,
    record: Readonly<Record<string, Tensor>>,
    options: MLAOptions & MLAWeightRecordOptions = {},
  ): Promise<MLA> {
    const resolved = resolveMLAConfig(config);
    return MLA.create(backend, resolved, mlaWeightsFromRecord(record, resolved, options), options);
  }

  /** The order `attend` takes under `order: 'auto'` for S new queries over T visible keys. */
  chooseOrder(queries: number, keys: number, keysPerQuery?: number): MLAOrder {
    return chooseOrder(this.config, { queries, keys, ...(keysPerQuery === undefined ? {} : { keysPerQuery }) });
  }

  /** y [B, S, dim] for x [B, S, dim]: project, append to the cache, attend. */
  async forward(x: Tensor, options: MLAForwardOptions = {}): Promise<Tensor> {
    const fn = 'MLA.forward';
    this.#assertUsable(fn);
    throwIfAborted(options.signal, fn);
    const { cache } = options;
    const B = dim(x, 0);
    if (cache && cache.batchSize !== B) throw new ShapeError({ fn, expected: `a cache of batch size ${B} (x is ${formatShape(x.shape)})`, got: String(cache.batchSize) });
    const before = cache ? [...cache.lengths] : [];
    using projection = await this.project(x, cache ? before : 0);
    throwIfAborted(options.signal, fn);
    const view: CacheView = cache
      ? await cache.updateAndFetch(projection.kvRows, null)
      : { keys: projection.kvRows, values: null, valueDim: this.config.kvLoraRank, rowMap: null, lengths: new Array<number>(B).fill(dim(x, 1)) };
    try {
      const { y } = await this.attend(projection, view, options);
      return y;
    } catch (error) {
      // A call that fails after its append (an abort, a refused option) takes its rows back out.
      cache?.truncate(before);
      throw error;
    }
  }

  /**
   * Spec §2 steps 1–2 for x [B, S, dim] at positions startPositions[b] + i: the queries, the
   * query latent and the rows to cache. `startPositions` is one number for every sequence or
   * one per sequence (a cache's `lengths` before the append).
   */
  async project(x: Tensor, startPositions: number | readonly number[]): Promise<MLAProjection> {
    const fn = 'MLA.project';
    this.#assertUsable(fn);
    const { dim: width, nHeads: H, qkNopeHeadDim: dn, qkRopeHeadDim: dr, qkHeadDim, kvLoraRank: C, normEps: eps, maxSeqLen } = this.config;
    x.assertAlive(fn);
    if (x.backend !== this.backend) throw new BackendError({ fn, expected: `x on ${this.backend.info.name}`, got: `a tensor on ${x.backend.info.name}` });
    if (x.dtype !== 'f32') throw new DTypeError({ fn, expected: 'x of dtype f32', got: x.dtype });
    if (x.rank !== 3 || x.shape[2] !== width || dim(x, 0) < 1 || dim(x, 1) < 1) {
      throw new ShapeError({ fn, expected: `x of shape [B, S, ${width}] with B, S ≥ 1`, got: formatShape(x.shape) });
    }
    const B = dim(x, 0);
    const S = dim(x, 1);
    const starts = typeof startPositions === 'number' ? new Array<number>(B).fill(startPositions) : [...startPositions];
    if (starts.length !== B) throw new ShapeError({ fn, expected: `${B} start positions (one per sequence)`, got: String(starts.length) });
    for (const [b, p] of starts.entries()) {
      if (!Number.isInteger(p) || p < 0) throw new ConfigError({ fn, expected: 'start positions that are integers ≥ 0', got: `${p} for sequence ${b}` });
      if (p + S > maxSeqLen) {
        throw new CapacityError({ fn, expected: `positions below maxSeqLen ${maxSeqLen}`, got: `tokens ${p}..${p + S - 1} for sequence ${b}` });
      }
    }
    const positionValues = new Int32Array(B * S);
    for (let b = 0; b < B; b++) for (let i = 0; i < S; i++) positionValues[b * S + i] = (starts[b] ?? 0) + i;

    const owned: Tensor[] = [];
    const keep = <T extends Tensor | null>(t: T): T => {
      if (t) owned.push(t);
      return t;
    };
    try {
      const positions = keep(tensor(this.backend, positionValues, [B, S], { dtype: 'i32' })); // i32 [B, S]
      const rotary = { layout: 'interleaved', offset: dn, width: dr } as const;

      // 1. queries: q = wq·x, or wq_b·q_norm(wq_a·x) through the query latent
      const query = this.weights.query;
      let queryLatent: Tensor | null = null;
      let qFlat: Tensor;
      if (query.kind === 'direct') {
        qFlat = await linear(x, query.wq); // [B, S, H(dn+dr)]
      } else {
        using qA = await linear(x, query.wqA); // [B, S, Cq]
        queryLatent = keep(await rmsNorm(qA, query.qNorm, eps)); // [B, S, Cq]
        qFlat = await linear(queryLatent, query.wqB); // [B, S, H(dn+dr)]
      }
      using qProjected = qFlat;
      using qHeads = reshape(qProjected, [B, S, H, qkHeadDim]); // [B, S, H, dn+dr]
      const q = keep(await rope(qHeads, positions, this.#invFreq, rotary)); // [B, S, H, dn+dr]

      // 2. the cached row: latent c = kv_norm(kv[:C]), shared rope key k_pe = RoPE(kv[C:])
      using kv = await linear(x, this.weights.wkvA); // [B, S, C+dr]
      using kvRow = reshape(kv, [B, S, 1, C + dr]); // [B, S, 1, C+dr]
      using kvRotated = await rope(kvRow, positions, this.#invFreq, { ...rotary, offset: C }); // [B, S, 1, C+dr]
      using latentRaw = await slice(kvRotated, [0, 0, 0, 0], [B, S, 1, C]); // [B, S, 1, C]
      using latent = await rmsNorm(latentRaw, this.weights.kvNorm, eps); // [B, S, 1, C]
      using kPe = await slice(kvRotated, [0, 0, 0, C], [B, S, 1, dr]); // [B, S, 1, dr]
      const kvRows = keep(await concat([latent, kPe], 3)); // [B, S, 1, C+dr]

      const dispose = (): void => {
        for (const t of owned) t.dispose();
      };
      return { startPositions: starts, positions, queryLatent, q, kvRows, dispose, [Symbol.dispose]: dispose };
    } catch (error) {
      for (const t of owned) t.dispose();
      throw error;
    }
  }

  /**
   * Spec §2 steps 4–5: attention of the projected queries over `view` (the cache after this
   * call's rows were appended), in the chosen order, then y = wo · concat_h(o_h).
   */
  async attend(projection: MLAProjection, view: CacheView, options: MLAAttendOptions = {}): Promise<MLAAttendResult> {
    const fn = 'MLA.attend';
    this.#assertUsable(fn);
    const { q, startPositions } = projection;
    const S = dim(q, 1);
    this.#validateView(fn, view, startPositions, S);
    const selectedKeys = options.selectedKeys ?? null;
    if (selectedKeys) {
      selectedKeys.assertAlive(fn);
      const [b, s, one] = selectedKeys.shape;
      if (selectedKeys.dtype !== 'i32' || selectedKeys.rank !== 4 || b !== dim(q, 0) || s !== S || one !== 1) {
        throw new ShapeError({ fn, expected: `selectedKeys i32 [${dim(q, 0)}, ${S}, 1, K] (one key list per query, shared by the heads)`, got: `${selectedKeys.dtype} ${formatShape(selectedKeys.shape)}` });
      }
    }
    const T = Math.max(...view.lengths);
    const requested = options.order ?? 'auto';
    if (requested !== 'auto' && requested !== 'naive' && requested !== 'absorbed') {
      throw new ConfigError({ fn, expected: "order 'auto', 'naive' or 'absorbed'", got: String(requested) });
    }
    const order = requested === 'auto' ? this.chooseOrder(S, T, selectedKeys ? dim(selectedKeys, 3) : undefined) : requested;
    throwIfAborted(options.signal, fn);

    const shared = { config: this.config, q, view, selectedKeys, distinctSelectedKeys: options.distinctSelectedKeys ?? false, implementation: options.implementation ?? 'auto', signal: options.signal };
    const { o, dispatch } =
      order === 'absorbed'
        ? await attendAbsorbed({ ...shared, weights: this.#absorbed })
        : await attendNaive({ ...shared, wkvB: this.weights.wkvB, headOnes: this.#headOnes });
    using heads = o; // [B, S, H·dv]
    throwIfAborted(options.signal, fn);
    const y = await linear(heads, this.weights.wo); // [B, S, dim]
    return { y, order, dispatch };
  }

  /** Frees the absorbed weights and RoPE table (and the weights, if the layer owns them). */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#absorbed.dispose();
    this.#invFreq.dispose();
    this.#headOnes.dispose();
    if (this.#ownsWeights) for (const t of weightTensors(this.weights)) t.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  #assertUsable(fn: string): void {
    if (this.#disposed) throw new BackendError({ fn, expected: 'a live MLA layer', got: 'one after dispose()' });
  }

  /** The view must hold latent rows [c ‖ k_pe] with this call's S rows at the end of each sequence. */
  #validateView(fn: string, view: CacheView, startPositions: readonly number[], S: number): void {
    const { kvLoraRank: C, latentRowDim } = this.config;
    const keys = view.keys;
    keys.assertAlive(fn);
    if (view.values !== null || (view.valueDim ?? C) !== C) {
      throw new ConfigError({
        fn,
        expected: `a latent cache view (values null, valueDim ${C}: values are the latent prefix of each row)`,
        got: view.values ? `separate values ${formatShape(view.values.shape)}` : `valueDim ${view.valueDim}`,
      });
    }
    const pooled = view.rowMap !== null;
    const rowShapeOk = pooled ? keys.rank === 3 && keys.shape[1] === 1 : keys.rank === 4 && keys.shape[0] === startPositions.length && keys.shape[2] === 1;
    if (!rowShapeOk || dim(keys, -1) !== latentRowDim) {
      const want = pooled ? `[R, 1, ${latentRowDim}]` : `[${startPositions.length}, T, 1, ${latentRowDim}]`;
      throw new ShapeError({ fn, expected: `cached latent rows ${want} ([c ‖ k_pe], C = ${C})`, got: formatShape(keys.shape) });
    }
    if (view.lengths.length !== startPositions.length) {
      throw new ShapeError({ fn, expected: `${startPositions.length} sequence lengths in the view`, got: String(view.lengths.length) });
    }
    for (const [b, start] of startPositions.entries()) {
      if (view.lengths[b] !== start + S) {
        throw new ShapeError({
          fn,
          expected: `sequence ${b} to end with this call's ${S} rows (length ${start + S}: append kvRows to the cache first)`,
          got: `length ${view.lengths[b]}`,
        });
      }
    }
  }
}
