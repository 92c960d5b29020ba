// A projected attention layer — the block nanoGPT calls CausalSelfAttention — for MHA, GQA and
// MQA alike: q, k, v projections, optional RoPE, the attention core (with a KV cache for decode
// and chunked prefill), the output projection.
//
// Axis letters: B batch, S new tokens, T keys (cache + new), Hq / Hkv heads, D / Dv head dims.

import type { KVCache } from '@attnkit/kvcache';
import {
  CapacityError,
  ConfigError,
  DTypeError,
  ShapeError,
  type Tensor,
  formatShape,
  linear,
  reshape,
  rope,
  ropeInvFreq,
  tensor,
  throwIfAborted,
} from '@attnkit/tensor-core';
import { attention } from '../attention.js';
import type { AttentionImplementation } from '../types.js';
import { type AttentionLayerConfig, type ResolvedAttentionConfig, resolveAttentionConfig } from './config.js';
import { type AttentionProjections, type AttentionWeightRecord, loadProjections } from './weights.js';

export interface AttentionLayerOptions {
  /** Prefix of this layer's keys in the weight record, e.g. `model.layers.0.self_attn.`. Default ''. */
  readonly prefix?: string;
}

export interface AttentionCall {
  /**
   * A KV cache from @attnkit/kvcache: the new keys and values are appended to it and the
   * queries attend over everything it holds (decode, chunked prefill). Without one, the call
   * is a self-contained prefill.
   */
  readonly cache?: KVCache | null;
  /**
   * Absolute position of the first new token, per sequence or for all (for RoPE). Default: the
   * tokens the cache holds before this call (0 without a cache).
   */
  readonly startPositions?: number | readonly number[];
  /** Extra additive mask for the attention core: [S, T], [B, S, T] or [B, Hq, S, T]. */
  readonly bias?: Tensor | null;
  readonly implementation?: AttentionImplementation;
  readonly signal?: AbortSignal;
}

export class AttentionLayer {
  readonly config: ResolvedAttentionConfig;
  /** The projections, borrowed from the record given to the constructor (the caller owns them). */
  readonly weights: AttentionProjections;
  readonly #name: string;
  readonly #invFreq: Float32Array | null;

  constructor(config: AttentionLayerConfig, weights: AttentionWeightRecord, options: AttentionLayerOptions = {}, name = 'AttentionLayer') {
    this.#name = name;
    this.config = resolveAttentionConfig(name, config);
    this.weights = loadProjections(name, weights, this.config, options.prefix ?? '');
    const r = this.config.rope;
    this.#invFreq = r ? ropeInvFreq({ dim: r.width, theta: r.theta, yarn: r.yarn }) : null;
  }

  /** x [B, S, dim] → y [B, S, dim]. */
  async forward(x: Tensor, call: AttentionCall = {}): Promise<Tensor> {
    const fn = `${this.#name}.forward`;
    const c = this.config;
    x.assertAlive(fn);
    if (x.dtype !== 'f32') throw new DTypeError({ fn, expected: 'x of dtype f32', got: x.dtype });
    if (x.rank !== 3 || x.shape[2] !== c.dim) throw new ShapeError({ fn, expected: `x of shape [B, S, ${c.dim}]`, got: formatShape(x.shape) });
    const [B, S] = x.shape as readonly [number, number, number];
    const cache = call.cache ?? null;
    if (cache && cache.batchSize !== B) throw new ShapeError({ fn, expected: `a cache of batch size ${B}`, got: String(cache.batchSize) });
    const starts = startPositions(fn, call, B);
    throwIfAborted(call.signal, fn);

    const { q: wq, k: wk, v: wv, o: wo } = this.weights;
    using qFlat = await linear(x, wq.weight, wq.bias); // [B, S, Hq·D]
    using kFlat = await linear(x, wk.weight, wk.bias); // [B, S, Hkv·D]
    using vFlat = await linear(x, wv.weight, wv.bias); // [B, S, Hkv·Dv]
    using q0 = reshape(qFlat, [B, S, c.nHeads, c.headDim]);
    using k0 = reshape(kFlat, [B, S, c.nKvHeads, c.headDim]);
    using v = reshape(vFlat, [B, S, c.nKvHeads, c.vHeadDim]);
    using qRot = await this.#rotate(q0, starts);
    using kRot = await this.#rotate(k0, starts);
    const q = qRot ?? q0;
    const k = kRot ?? k0;

    const common = {
      mask: c.causal ? ('causal' as const) : ('none' as const),
      scale: c.scale,
      ...(c.window !== null ? { window: c.window } : {}),
      ...(call.bias ? { bias: call.bias } : {}),
      ...(call.implementation ? { implementation: call.implementation } : {}),
      ...(call.signal ? { signal: call.signal } : {}),
    };
    let o: Tensor; // [B, S, Hq, Dv]
    if (cache) {
      const before = cache.lengths;
      const view = await cache.updateAndFetch(k, v); // owned by the cache: read, never disposed here
      try {
        // A sliding-window cache keeps only the sinks and the window: its view says which window
        // the kept keys serve, and the layer's own window (if any) must not be wider.
        const window = view.window ?? c.window;
        if (view.window !== undefined && c.window !== null && c.window > view.window) {
          throw new ConfigError({ fn, expected: `a cache that keeps at least the layer's window (${c.window} keys)`, got: `a sliding-window cache of ${view.window}` });
        }
        const result = await attention(q, view.keys, view.values, {
          ...common,
          kvLengths: view.lengths,
          rowMap: view.rowMap,
          ...(window !== null ? { window } : {}),
          ...(view.values === null && view.valueDim !== undefined ? { valueDim: view.valueDim } : {}),
          ...(window !== null && view.sinkTokens ? { sinkTokens: view.sinkTokens } : {}),
        });
        o = result.out;
      } catch (error) {
        // A call that fails after its append (an abort, a refused option) takes its rows back out.
        rollBack(cache, before);
        throw error;
      }
    } else {
      o = (await attention(q, k, v, common)).out;
    }
    using attended = o;
    using oFlat = reshape(attended, [B, S, c.nHeads * c.vHeadDim]);
    return await linear(oFlat, wo.weight, wo.bias); // [B, S, dim]
  }

  /** RoPE on q or k at positions start_b + i, or null when the layer has none. */
  async #rotate(x: Tensor, starts: readonly number[]): Promise<Tensor | null> {
    const r = this.config.rope;
    if (!r || !this.#invFreq) return null;
    const [B, S] = x.shape as readonly [number, number];
    const positions = new Int32Array(B * S);
    for (let b = 0; b < B; b++) for (let i = 0; i < S; i++) positions[b * S + i] = (starts[b] as number) + i;
    using pos = tensor(x.backend, positions, [B, S], { dtype: 'i32' });
    using inv = tensor(x.backend, this.#invFreq, [r.width / 2]);
    return await rope(x, pos, inv, { layout: r.layout, offset: r.offset, width: r.width });
  }
}

function startPositions(fn: string, call: AttentionCall, B: number): number[] {
  const given = call.startPositions;
  let starts: number[];
  if (given === undefined) starts = call.cache ? [...call.cache.lengths] : new Array<number>(B).fill(0);
  else if (typeof given === 'number') starts = new Array<number>(B).fill(given);
  else starts = [...given];
  if (starts.length !== B) throw new ShapeError({ fn, expected: `${B} start positions`, got: String(starts.length) });
  for (const s of starts) {
    if (!Number.isInteger(s) || s < 0) throw new ConfigError({ fn, expected: 'start positions that are non-negative integers', got: String(s) });
    if (s >= 2 ** 31) throw new CapacityError({ fn, expected: 'positions below 2³¹', got: String(s) });
  }
  return starts;
}

/**
 * Rolls a cache back to `lengths` after a failed call. A sliding-window cache that has already
 * evicted what the rollback needs refuses (CapacityError); the call's own error is the one to
 * report then, so the refusal is not rethrown.
 */
function rollBack(cache: KVCache, lengths: readonly number[]): void {
  try {
    cache.truncate(lengths);
  } catch {
    // see above: the original error propagates
  }
}
