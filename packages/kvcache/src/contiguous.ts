// ContiguousKVCache: K [B, cap, Hkv, D] and V [B, cap, Hkv, Dv] that grow in chunks of `step`
// tokens, like mlx-lm's KVCache. The view is the storage itself plus per-sequence lengths, so
// attention reads it with no copy; a growth copies the cache once per chunk, never per token.

import { type Backend, ConfigError, type Tensor, zeros } from '@attnkit/tensor-core';
import {
  type RowLayout,
  assertUsable,
  checkCapacity,
  expectCapacity,
  expectNonNegativeInt,
  expectPositiveInt,
  resolveLayout,
  resolveTruncation,
  validateAppend,
} from './layout.js';
import { GrowableRows, readContiguous } from './rows.js';
import type { CacheView, KVCache, RowOptions, StorageDType } from './types.js';

export interface ContiguousKVCacheOptions extends RowOptions {
  readonly batchSize: number;
  /** Tokens added per growth (default 256): the cache copies itself once per `step` tokens. */
  readonly step?: number;
  /** Most tokens a sequence may hold (default Infinity). Growth never allocates past it. */
  readonly maxCapacity?: number;
  /** Tokens per sequence to allocate up front (default 0: the first append allocates). */
  readonly initialCapacity?: number;
}

export class ContiguousKVCache implements KVCache {
  readonly kind = 'contiguous';
  readonly backend: Backend;
  readonly batchSize: number;
  readonly layout: RowLayout;
  readonly capacity: number;
  readonly step: number;
  readonly #keys: GrowableRows;
  readonly #values: GrowableRows | null;
  readonly #name: string;
  #lengths: number[];
  #busy = false;
  #disposed = false;

  /** `name` is what errors are reported under (caches built on this one pass their own). */
  constructor(backend: Backend, options: ContiguousKVCacheOptions, name = 'ContiguousKVCache') {
    const fn = name;
    this.#name = name;
    this.backend = backend;
    this.batchSize = expectPositiveInt(fn, 'batchSize', options.batchSize);
    this.layout = resolveLayout(fn, options);
    this.step = expectPositiveInt(fn, 'step', options.step ?? 256);
    this.capacity = expectCapacity(fn, 'maxCapacity', options.maxCapacity ?? Infinity);
    const initial = expectNonNegativeInt(fn, 'initialCapacity', options.initialCapacity ?? 0);
    if (initial > this.capacity) throw new ConfigError({ fn, expected: `initialCapacity ≤ maxCapacity (${this.capacity})`, got: String(initial) });
    const { kvHeads, keyDim, valueDim, dtype, keyBlockSize, valueBlockSize } = this.layout;
    this.#keys = new GrowableRows(backend, this.batchSize, kvHeads, keyDim, dtype, keyBlockSize);
    this.#values = this.layout.values === 'separate' ? new GrowableRows(backend, this.batchSize, kvHeads, valueDim, dtype, valueBlockSize) : null;
    this.#keys.allocateEmpty(initial);
    this.#values?.allocateEmpty(initial);
    this.#lengths = new Array<number>(this.batchSize).fill(0);
  }

  get lengths(): readonly number[] {
    return [...this.#lengths];
  }

  get dtype(): StorageDType {
    return this.layout.dtype;
  }

  /** Tokens per sequence allocated now (a multiple of `step`, or maxCapacity). */
  get allocatedTokens(): number {
    return this.#keys.allocated;
  }

  get nbytes(): number {
    return this.#keys.nbytes + (this.#values?.nbytes ?? 0);
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  async updateAndFetch(k: Tensor, v: Tensor | null): Promise<CacheView> {
    const fn = `${this.#name}.updateAndFetch`;
    assertUsable(fn, this.#disposed, this.#busy);
    const S = validateAppend(fn, this.backend, this.layout, this.batchSize, k, v);
    checkCapacity(fn, this.#lengths, S, this.capacity);
    this.#busy = true;
    try {
      await this.#reserve(Math.max(...this.#lengths) + S);
      await this.#keys.append(k, this.#lengths);
      if (this.#values && v) await this.#values.append(v, this.#lengths);
      this.#lengths = this.#lengths.map((len) => len + S);
      return this.#view();
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Makes room for `tokens` tokens per sequence, rounded up to a multiple of `step` (capped at
   * maxCapacity); call it to allocate ahead of a long prefill.
   */
  async reserve(tokens: number): Promise<void> {
    const fn = `${this.#name}.reserve`;
    assertUsable(fn, this.#disposed, this.#busy);
    expectNonNegativeInt(fn, 'tokens', tokens);
    checkCapacity(fn, [tokens], 0, this.capacity);
    this.#busy = true;
    try {
      await this.#reserve(tokens);
    } finally {
      this.#busy = false;
    }
  }

  async #reserve(tokens: number): Promise<void> {
    if (tokens <= this.#keys.allocated) return;
    const target = Math.min(Math.ceil(tokens / this.step) * this.step, this.capacity);
    await this.#keys.reserve(target);
    await this.#values?.reserve(target);
  }

  /** The view of the current contents (what the last updateAndFetch returned). */
  view(): CacheView {
    const fn = `${this.#name}.view`;
    assertUsable(fn, this.#disposed, this.#busy);
    return this.#view();
  }

  #view(): CacheView {
    const keys = this.#keys.tensor;
    if (!keys) {
      throw new ConfigError({ fn: `${this.#name}.view`, expected: 'allocated storage (append, reserve or set initialCapacity first)', got: 'an empty cache' });
    }
    return {
      keys,
      values: this.#values?.tensor ?? null,
      ...(this.layout.values === 'keyPrefix' ? { valueDim: this.layout.valueDim } : {}),
      rowMap: null,
      lengths: Object.freeze([...this.#lengths]),
    };
  }

  truncate(length: number | readonly number[]): void {
    const fn = `${this.#name}.truncate`;
    assertUsable(fn, this.#disposed, this.#busy);
    this.#lengths = resolveTruncation(fn, this.#lengths, length);
  }

  readKeys(): Promise<Tensor> {
    return this.#read(`${this.#name}.readKeys`, this.#keys);
  }

  async readValues(): Promise<Tensor | null> {
    return this.#values ? this.#read(`${this.#name}.readValues`, this.#values) : null;
  }

  /** Channels [from, from + width) of every key row as f32 [B, Tmax, Hkv, width] (the MLA latent and rope slices). */
  readKeyChannels(from: number, width: number): Promise<Tensor> {
    return this.#read(`${this.#name}.readKeyChannels`, this.#keys, from, width);
  }

  async #read(fn: string, rows: GrowableRows, from = 0, width?: number): Promise<Tensor> {
    assertUsable(fn, this.#disposed, this.#busy);
    const T = Math.max(...this.#lengths);
    const storage = rows.tensor;
    if (!storage) return zeros(this.backend, [this.batchSize, 0, rows.heads, width ?? rows.width - from], 'f32');
    return readContiguous(storage, T, this.#lengths, from, width);
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#keys.dispose();
    this.#values?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
