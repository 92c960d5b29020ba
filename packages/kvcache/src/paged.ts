// PagedKVCache: a batch of sequences whose tokens live in pages of a shared PagePool, found
// through one block table per sequence (vLLM's PagedAttention). Token t of sequence b sits in
// pool row table_b[⌊t/P⌋]·P + t mod P. `fork(b)` starts a new sequence that shares b's pages;
// the first write into a shared, partly filled page copies that page (copy-on-write), so a
// fork costs no copy until the sequences diverge inside a page. The view is the pool itself
// [R, Hkv, D] plus the i32 row map [B, Tmax] attention follows: nothing is gathered.

import { type Backend, BackendError, CapacityError, ConfigError, type Tensor, gather, reshape, scatterRows, zeros } from '@attnkit/tensor-core';
import { assertUsable, checkCapacity, expectCapacity, expectNonNegativeInt, resolveTruncation, validateAppend } from './layout.js';
import type { PagePool } from './page-pool.js';
import { copyRows, indexTensor, zeroPastLengths } from './rows.js';
import type { CacheView, KVCache, StorageDType } from './types.js';

export interface PagedKVCacheOptions {
  /** Empty sequences to start with (default 1); `addSequence` and `fork` add more. */
  readonly batchSize?: number;
  /** Most tokens one sequence may hold (default Infinity: bounded by the pool). */
  readonly maxLength?: number;
}

export class PagedKVCache implements KVCache {
  readonly kind = 'paged';
  readonly pool: PagePool;
  readonly backend: Backend;
  readonly capacity: number;
  #tables: number[][];
  #lengths: number[];
  #rowMap: Tensor | null = null;
  #rowMapStale = true;
  #busy = false;
  #disposed = false;

  constructor(pool: PagePool, options: PagedKVCacheOptions = {}) {
    const fn = 'PagedKVCache';
    if (pool.isDisposed) throw new BackendError({ fn, expected: 'a live page pool', got: 'a pool after dispose()' });
    this.pool = pool;
    this.backend = pool.backend;
    const batchSize = expectNonNegativeInt(fn, 'batchSize', options.batchSize ?? 1);
    this.capacity = expectCapacity(fn, 'maxLength', options.maxLength ?? Infinity);
    this.#tables = Array.from({ length: batchSize }, () => []);
    this.#lengths = new Array<number>(batchSize).fill(0);
  }

  get batchSize(): number {
    return this.#tables.length;
  }

  get lengths(): readonly number[] {
    return [...this.#lengths];
  }

  get dtype(): StorageDType {
    return this.pool.layout.dtype;
  }

  /** Each sequence's pages, in token order. */
  get blockTables(): readonly (readonly number[])[] {
    return this.#tables.map((t) => [...t]);
  }

  /** Distinct pages this cache's sequences hold (shared pages counted once). */
  get pagesHeld(): number {
    return new Set(this.#tables.flat()).size;
  }

  /** The pages this cache holds plus its row map (the pool's own allocation is `pool.nbytes`). */
  get nbytes(): number {
    return this.pagesHeld * this.pool.bytesPerPage + (this.#rowMap ? this.backend.storageBytes('i32', this.#rowMap.size) : 0);
  }

  /** Adds an empty sequence at the end of the batch; returns its index. */
  addSequence(): number {
    this.#assertUsable('PagedKVCache.addSequence');
    this.#tables.push([]);
    this.#lengths.push(0);
    this.#rowMapStale = true;
    return this.#tables.length - 1;
  }

  /** Adds a sequence that shares every page of `seq` (copy-on-write); returns its index. */
  fork(seq: number): number {
    const fn = 'PagedKVCache.fork';
    this.#assertUsable(fn);
    this.#checkSequence(fn, seq);
    const table = this.#tables[seq] ?? [];
    for (const page of table) this.pool.retain(page);
    this.#tables.push([...table]);
    this.#lengths.push(this.#lengths[seq] ?? 0);
    this.#rowMapStale = true;
    return this.#tables.length - 1;
  }

  /** Drops sequence `seq` and releases its pages; later sequences move down one index. */
  removeSequence(seq: number): void {
    const fn = 'PagedKVCache.removeSequence';
    this.#assertUsable(fn);
    this.#checkSequence(fn, seq);
    for (const page of this.#tables[seq] ?? []) this.pool.release(page);
    this.#tables.splice(seq, 1);
    this.#lengths.splice(seq, 1);
    this.#rowMapStale = true;
  }

  async updateAndFetch(k: Tensor, v: Tensor | null): Promise<CacheView> {
    const fn = 'PagedKVCache.updateAndFetch';
    this.#assertUsable(fn);
    const S = validateAppend(fn, this.backend, this.pool.layout, this.batchSize, k, v);
    checkCapacity(fn, this.#lengths, S, this.capacity);
    const P = this.pool.pageSize;
    const plan = this.#plan(fn, S);
    this.#busy = true;
    const taken: number[] = [];
    try {
      // 1. Take every page the append needs; copy shared partial pages (copy-on-write).
      const tables = this.#tables.map((t) => [...t]);
      const released: number[] = [];
      for (const [b, step] of plan.entries()) {
        const table = tables[b] ?? [];
        if (step.copyOnWrite) {
          const shared = table[table.length - 1] as number;
          const copy = this.pool.allocate();
          taken.push(copy);
          const filled = (this.#lengths[b] as number) % P;
          await copyRows(this.pool.keys, shared * P, this.pool.keys, copy * P, filled);
          const values = this.pool.values;
          if (values) await copyRows(values, shared * P, values, copy * P, filled);
          table[table.length - 1] = copy;
          released.push(shared);
        }
        for (let i = 0; i < step.newPages; i++) {
          const page = this.pool.allocate();
          taken.push(page);
          table.push(page);
        }
      }
      // 2. Scatter the new rows to their pool rows.
      const rows: number[] = [];
      for (const [b, table] of tables.entries()) {
        const len = this.#lengths[b] as number;
        for (let s = 0; s < S; s++) rows.push((table[Math.floor((len + s) / P)] as number) * P + ((len + s) % P));
      }
      using idx = indexTensor(this.backend, rows);
      using flatK = reshape(k, [this.batchSize * S, k.shape[2] as number, k.shape[3] as number]); // [B·S, Hkv, D]
      await scatterRows(this.pool.keys, flatK, idx);
      const values = this.pool.values;
      if (values && v) {
        using flatV = reshape(v, [this.batchSize * S, v.shape[2] as number, v.shape[3] as number]); // [B·S, Hkv, Dv]
        await scatterRows(values, flatV, idx);
      }
      // 3. Commit.
      for (const page of released) this.pool.release(page);
      this.#tables = tables;
      this.#lengths = this.#lengths.map((len) => len + S);
      // The row map follows the block tables only (entries past a length are never read).
      if (taken.length > 0) this.#rowMapStale = true;
      return this.#view();
    } catch (error) {
      for (const page of taken) this.pool.release(page);
      throw error;
    } finally {
      this.#busy = false;
    }
  }

  /**
   * Pages each sequence needs for S more tokens, and whether its last page must be copied
   * first (it is partly filled and shared). Refcounts are simulated in batch order, so of two
   * sequences sharing a page only the first copies; the last holder writes in place. Throws
   * CapacityError, changing nothing, when the pool lacks the pages.
   */
  #plan(fn: string, S: number): { newPages: number; copyOnWrite: boolean }[] {
    const P = this.pool.pageSize;
    const refs = new Map<number, number>();
    const plan = this.#tables.map((table, b) => {
      const len = this.#lengths[b] as number;
      const newPages = Math.ceil((len + S) / P) - table.length;
      const last = table[table.length - 1];
      let copyOnWrite = false;
      if (len % P !== 0 && last !== undefined) {
        const holders = refs.get(last) ?? this.pool.refCount(last);
        copyOnWrite = holders > 1;
        if (copyOnWrite) refs.set(last, holders - 1);
      }
      return { newPages, copyOnWrite };
    });
    const needed = plan.reduce((n, p) => n + p.newPages + (p.copyOnWrite ? 1 : 0), 0);
    if (needed > this.pool.freePages) {
      throw new CapacityError({ fn, expected: `at most ${this.pool.freePages} free pages of ${P} tokens in the pool`, got: `an append of ${S} tokens per sequence needing ${needed}` });
    }
    return plan;
  }

  /** The current view (the pool and a row map of the current block tables). */
  view(): CacheView {
    this.#assertUsable('PagedKVCache.view');
    return this.#view();
  }

  #view(): CacheView {
    const layout = this.pool.layout;
    return {
      keys: this.pool.keys,
      values: this.pool.values,
      ...(layout.values === 'keyPrefix' ? { valueDim: layout.valueDim } : {}),
      rowMap: this.#currentRowMap(),
      lengths: Object.freeze([...this.#lengths]),
    };
  }

  /** i32 [B, Tmax] with Tmax = the longest block table's pages × P (at least one page); unused entries point at row 0. */
  #currentRowMap(): Tensor {
    if (this.#rowMap && !this.#rowMapStale) return this.#rowMap;
    const P = this.pool.pageSize;
    const Tmax = Math.max(1, ...this.#tables.map((t) => t.length)) * P;
    const map = new Int32Array(this.batchSize * Tmax);
    for (const [b, table] of this.#tables.entries()) {
      for (const [i, page] of table.entries()) for (let r = 0; r < P; r++) map[b * Tmax + i * P + r] = page * P + r;
    }
    this.#rowMap?.dispose();
    this.#rowMap = indexTensor(this.backend, map, [this.batchSize, Tmax]);
    this.#rowMapStale = false;
    return this.#rowMap;
  }

  truncate(length: number | readonly number[]): void {
    const fn = 'PagedKVCache.truncate';
    this.#assertUsable(fn);
    const targets = resolveTruncation(fn, this.#lengths, length);
    const P = this.pool.pageSize;
    for (const [b, n] of targets.entries()) {
      const table = this.#tables[b] ?? [];
      const dropped = table.splice(Math.ceil(n / P));
      for (const page of dropped) this.pool.release(page);
      if (dropped.length > 0) this.#rowMapStale = true;
    }
    this.#lengths = targets;
  }

  readKeys(): Promise<Tensor> {
    return this.#read('PagedKVCache.readKeys', this.pool.keys);
  }

  async readValues(): Promise<Tensor | null> {
    const values = this.pool.values;
    return values ? this.#read('PagedKVCache.readValues', values) : null;
  }

  async #read(fn: string, rows: Tensor): Promise<Tensor> {
    this.#assertUsable(fn);
    const T = Math.max(0, ...this.#lengths);
    const [, H, W] = rows.shape as readonly [number, number, number];
    if (T === 0) return zeros(this.backend, [this.batchSize, 0, H, W], 'f32');
    const P = this.pool.pageSize;
    const map = new Int32Array(this.batchSize * T);
    for (const [b, table] of this.#tables.entries()) {
      for (let t = 0; t < (this.#lengths[b] as number); t++) map[b * T + t] = (table[Math.floor(t / P)] as number) * P + (t % P);
    }
    using idx = indexTensor(this.backend, map, [this.batchSize, T]);
    return await zeroPastLengths(await gather(rows, idx), this.#lengths); // [B, T, Hkv, W]
  }

  /** Releases this cache's pages back to the pool and frees its row map. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    if (!this.pool.isDisposed) for (const table of this.#tables) for (const page of table) this.pool.release(page);
    this.#tables = [];
    this.#lengths = [];
    this.#rowMap?.dispose();
    this.#rowMap = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #assertUsable(fn: string): void {
    assertUsable(fn, this.#disposed, this.#busy);
    if (this.pool.isDisposed) throw new BackendError({ fn, expected: 'a live page pool', got: 'a pool after dispose()' });
  }

  #checkSequence(fn: string, seq: number): void {
    if (!Number.isInteger(seq) || seq < 0 || seq >= this.batchSize) {
      throw new ConfigError({ fn, expected: `a sequence index in [0, ${this.batchSize})`, got: String(seq) });
    }
  }
}
