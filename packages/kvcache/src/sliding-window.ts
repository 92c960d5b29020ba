// SlidingWindowKVCache: a ring buffer for sliding-window attention with optional attention
// sinks (StreamingLLM; mlx-lm's RotatingKVCache with `keep`). Each sequence owns s sink rows
// (its first s tokens, never evicted) and a ring of R rows for the rest: token a ≥ s lives in
// ring slot (a − s) mod R. The view lists, in logical order, the sinks and then the retained
// tokens [oldest, len): logical index = absolute position − δ for the ring part, with δ the
// number of evicted tokens. Distances inside the window are unchanged by δ, so attention with
// `window: w, sinkTokens: s` over the view sees exactly the keys it would see over the full
// history: query p sees (p − w, p] and the sinks.
//
// A chunk of S new tokens needs its first query's w − 1 predecessors to survive the chunk's own
// writes, so R ≥ w − 1 + S. The ring starts at w − 1 + maxChunk rows; a longer append grows it
// once (the retained rows move in at most three copies per sequence). Rolling back (truncate)
// works while the tokens the next query needs are still retained: up to R − (w − 1) tokens.

import { type Backend, CapacityError, type Tensor, gather, reshape, scatterRows, zeros } from '@attnkit/tensor-core';
import { type RowLayout, assertUsable, expectNonNegativeInt, expectPositiveInt, resolveLayout, resolveTruncation, validateAppend } from './layout.js';
import { copyRows, indexTensor, zeroPastLengths } from './rows.js';
import type { CacheView, KVCache, RowOptions, StorageDType } from './types.js';

export interface SlidingWindowKVCacheOptions extends RowOptions {
  readonly batchSize: number;
  /** w: keys each query sees, itself included (attention's `window`). */
  readonly window: number;
  /** s: the first s tokens stay visible to every query (default 0). */
  readonly sinkTokens?: number;
  /** The longest append the ring takes without growing: R = w − 1 + maxChunk (default 64). */
  readonly maxChunk?: number;
}

export class SlidingWindowKVCache implements KVCache {
  readonly kind = 'sliding-window';
  readonly backend: Backend;
  readonly batchSize: number;
  readonly layout: RowLayout;
  readonly window: number;
  readonly sinkTokens: number;
  /** Unbounded: old tokens are evicted, never refused. */
  readonly capacity = Infinity;
  #ring: number;
  #keys: Tensor;
  #values: Tensor | null;
  #lengths: number[];
  /** Per sequence: the oldest non-sink position still held (≥ s). */
  #oldest: number[];
  #rowMap: Tensor | null = null;
  #busy = false;
  #disposed = false;

  constructor(backend: Backend, options: SlidingWindowKVCacheOptions) {
    const fn = 'SlidingWindowKVCache';
    this.backend = backend;
    this.batchSize = expectPositiveInt(fn, 'batchSize', options.batchSize);
    this.layout = resolveLayout(fn, options);
    this.window = expectPositiveInt(fn, 'window', options.window);
    this.sinkTokens = expectNonNegativeInt(fn, 'sinkTokens', options.sinkTokens ?? 0);
    const maxChunk = expectPositiveInt(fn, 'maxChunk', options.maxChunk ?? 64);
    this.#ring = this.window - 1 + maxChunk;
    [this.#keys, this.#values] = this.#allocate(this.#ring);
    this.#lengths = new Array<number>(this.batchSize).fill(0);
    this.#oldest = new Array<number>(this.batchSize).fill(this.sinkTokens);
  }

  get lengths(): readonly number[] {
    return [...this.#lengths];
  }

  get dtype(): StorageDType {
    return this.layout.dtype;
  }

  /** Ring rows per sequence (R); each sequence holds sinkTokens + R rows. */
  get ringSize(): number {
    return this.#ring;
  }

  get nbytes(): number {
    const { kvHeads, keyDim, valueDim, dtype, keyBlockSize, valueBlockSize } = this.layout;
    const rows = this.batchSize * (this.sinkTokens + this.#ring);
    const values = this.#values ? this.backend.storageBytes(dtype, rows * kvHeads * valueDim, valueBlockSize) : 0;
    return this.backend.storageBytes(dtype, rows * kvHeads * keyDim, keyBlockSize) + values + (this.#rowMap ? this.backend.storageBytes('i32', this.#rowMap.size) : 0);
  }

  async updateAndFetch(k: Tensor, v: Tensor | null): Promise<CacheView> {
    const fn = 'SlidingWindowKVCache.updateAndFetch';
    assertUsable(fn, this.#disposed, this.#busy);
    const S = validateAppend(fn, this.backend, this.layout, this.batchSize, k, v);
    this.#busy = true;
    try {
      if (this.window - 1 + S > this.#ring) await this.#grow(this.window - 1 + S);
      const rows: number[] = [];
      for (const [b, len] of this.#lengths.entries()) for (let s = 0; s < S; s++) rows.push(this.#rowOf(b, len + s));
      using idx = indexTensor(this.backend, rows);
      using flatK = reshape(k, [this.batchSize * S, this.layout.kvHeads, this.layout.keyDim]); // [B·S, Hkv, D]
      await scatterRows(this.#keys, flatK, idx);
      if (this.#values && v) {
        using flatV = reshape(v, [this.batchSize * S, this.layout.kvHeads, this.layout.valueDim]); // [B·S, Hkv, Dv]
        await scatterRows(this.#values, flatV, idx);
      }
      this.#lengths = this.#lengths.map((len) => len + S);
      this.#oldest = this.#lengths.map((len, b) => Math.max(this.#oldest[b] as number, len - this.#ring));
      this.#rowMap?.dispose();
      this.#rowMap = null;
      return this.#view();
    } finally {
      this.#busy = false;
    }
  }

  /** Pool row of absolute position a of sequence b. */
  #rowOf(b: number, a: number, ring = this.#ring): number {
    const s = this.sinkTokens;
    const base = b * (s + ring);
    return a < s ? base + a : base + s + ((a - s) % ring);
  }

  /** Logical rows of the view: the sinks, then the retained tokens [oldest, len). */
  #logicalPositions(b: number): number[] {
    const len = this.#lengths[b] as number;
    const positions: number[] = [];
    for (let a = 0; a < Math.min(len, this.sinkTokens); a++) positions.push(a);
    for (let a = this.#oldest[b] as number; a < len; a++) positions.push(a);
    return positions;
  }

  view(): CacheView {
    assertUsable('SlidingWindowKVCache.view', this.#disposed, this.#busy);
    return this.#view();
  }

  #view(): CacheView {
    const Tmax = this.sinkTokens + this.#ring;
    const lengths: number[] = [];
    const map = this.#rowMap ? null : new Int32Array(this.batchSize * Tmax);
    for (let b = 0; b < this.batchSize; b++) {
      const positions = this.#logicalPositions(b);
      lengths.push(positions.length);
      if (map) for (const [t, a] of positions.entries()) map[b * Tmax + t] = this.#rowOf(b, a);
    }
    if (map) this.#rowMap = indexTensor(this.backend, map, [this.batchSize, Tmax]);
    return {
      keys: this.#keys,
      values: this.#values,
      ...(this.layout.values === 'keyPrefix' ? { valueDim: this.layout.valueDim } : {}),
      rowMap: this.#rowMap,
      lengths: Object.freeze(lengths),
      sinkTokens: this.sinkTokens,
      window: this.window,
    };
  }

  /**
   * Rolls sequences back. Possible while the tokens the next query needs — the w − 1 before
   * the new end — were not evicted; otherwise CapacityError and nothing changes.
   */
  truncate(length: number | readonly number[]): void {
    const fn = 'SlidingWindowKVCache.truncate';
    assertUsable(fn, this.#disposed, this.#busy);
    const targets = resolveTruncation(fn, this.#lengths, length);
    for (const [b, n] of targets.entries()) {
      const oldest = this.#oldest[b] as number;
      const earliest = oldest > this.sinkTokens ? oldest + this.window - 1 : 0;
      if (n < earliest) {
        throw new CapacityError({
          fn,
          expected: `a length ≥ ${earliest} for sequence ${b} (tokens before ${oldest} were evicted; the window needs ${this.window - 1} before the end)`,
          got: String(n),
        });
      }
    }
    this.#lengths = targets;
    this.#rowMap?.dispose();
    this.#rowMap = null;
  }

  readKeys(): Promise<Tensor> {
    return this.#read('SlidingWindowKVCache.readKeys', this.#keys);
  }

  async readValues(): Promise<Tensor | null> {
    return this.#values ? this.#read('SlidingWindowKVCache.readValues', this.#values) : null;
  }

  async #read(fn: string, rows: Tensor): Promise<Tensor> {
    assertUsable(fn, this.#disposed, this.#busy);
    const logical = Array.from({ length: this.batchSize }, (_, b) => this.#logicalPositions(b));
    const T = Math.max(0, ...logical.map((p) => p.length));
    const [, H, W] = rows.shape as readonly [number, number, number];
    if (T === 0) return zeros(this.backend, [this.batchSize, 0, H, W], 'f32');
    const map = new Int32Array(this.batchSize * T);
    for (const [b, positions] of logical.entries()) for (const [t, a] of positions.entries()) map[b * T + t] = this.#rowOf(b, a);
    using idx = indexTensor(this.backend, map, [this.batchSize, T]);
    return await zeroPastLengths(await gather(rows, idx), logical.map((p) => p.length)); // [B, T, Hkv, W]
  }

  #allocate(ring: number): [Tensor, Tensor | null] {
    const { kvHeads, keyDim, valueDim, dtype, keyBlockSize, valueBlockSize } = this.layout;
    const rows = this.batchSize * (this.sinkTokens + ring);
    const keys = zeros(this.backend, [rows, kvHeads, keyDim], dtype, keyBlockSize); // [B·(s + R), Hkv, D]
    const values = this.layout.values === 'separate' ? zeros(this.backend, [rows, kvHeads, valueDim], dtype, valueBlockSize) : null;
    return [keys, values];
  }

  /** Re-lays the sinks and retained tokens out in a larger ring: contiguous runs, bit-exact copies. */
  async #grow(ring: number): Promise<void> {
    const [keys, values] = this.#allocate(ring);
    try {
      for (let b = 0; b < this.batchSize; b++) {
        for (const run of this.#runs(b, ring)) {
          await copyRows(this.#keys, run.from, keys, run.to, run.count);
          if (this.#values && values) await copyRows(this.#values, run.from, values, run.to, run.count);
        }
      }
    } catch (error) {
      keys.dispose();
      values?.dispose();
      throw error;
    }
    this.#keys.dispose();
    this.#values?.dispose();
    this.#keys = keys;
    this.#values = values;
    this.#ring = ring;
    this.#rowMap?.dispose();
    this.#rowMap = null;
  }

  /** Maximal runs of held positions whose old and new rows are both consecutive. */
  #runs(b: number, ring: number): { from: number; to: number; count: number }[] {
    const runs: { from: number; to: number; count: number }[] = [];
    for (const a of this.#logicalPositions(b)) {
      const from = this.#rowOf(b, a);
      const to = this.#rowOf(b, a, ring);
      const last = runs[runs.length - 1];
      if (last && last.from + last.count === from && last.to + last.count === to) last.count++;
      else runs.push({ from, to, count: 1 });
    }
    return runs;
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#keys.dispose();
    this.#values?.dispose();
    this.#rowMap?.dispose();
    this.#rowMap = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
