// PagePool: the fixed-size pages paged caches draw from (vLLM's block pool). One K row pool
// [numPages·P, Hkv, D] and one V row pool [numPages·P, Hkv, Dv], allocated once; a page is P
// consecutive rows. Pages are reference-counted: a forked sequence shares its parent's pages
// until one of them writes into a shared page (copy-on-write), and a page returns to the free
// list when its last holder lets go.

import { type Backend, BackendError, CapacityError, ConfigError, type Tensor, zeros } from '@attnkit/tensor-core';
import { type RowLayout, expectPositiveInt, resolveLayout } from './layout.js';
import type { RowOptions } from './types.js';

export interface PagePoolOptions extends RowOptions {
  /** Tokens per page (vLLM's block_size). Default 16. */
  readonly pageSize?: number;
  /** Pages in the pool; the pool never grows, so this bounds the tokens of all its sequences. */
  readonly numPages: number;
}

export class PagePool implements Disposable {
  readonly backend: Backend;
  readonly layout: RowLayout;
  readonly pageSize: number;
  readonly numPages: number;
  readonly #keys: Tensor;
  readonly #values: Tensor | null;
  readonly #refs: Int32Array;
  /** Free pages, the next to hand out last (so pages go out in increasing order). */
  readonly #free: number[];
  #disposed = false;

  constructor(backend: Backend, options: PagePoolOptions) {
    const fn = 'PagePool';
    this.backend = backend;
    this.layout = resolveLayout(fn, options);
    this.pageSize = expectPositiveInt(fn, 'pageSize', options.pageSize ?? 16);
    this.numPages = expectPositiveInt(fn, 'numPages', options.numPages);
    const { kvHeads, keyDim, valueDim, dtype, keyBlockSize, valueBlockSize } = this.layout;
    const rows = this.numPages * this.pageSize;
    this.#keys = zeros(backend, [rows, kvHeads, keyDim], dtype, keyBlockSize); // [R, Hkv, D]
    this.#values = this.layout.values === 'separate' ? zeros(backend, [rows, kvHeads, valueDim], dtype, valueBlockSize) : null; // [R, Hkv, Dv]
    this.#refs = new Int32Array(this.numPages);
    this.#free = Array.from({ length: this.numPages }, (_, i) => this.numPages - 1 - i);
  }

  /** Key rows [numPages·P, Hkv, D]: what a paged view hands attention. */
  get keys(): Tensor {
    this.#assertLive('PagePool.keys');
    return this.#keys;
  }

  /** Value rows [numPages·P, Hkv, Dv], or null (key-prefix and key-only layouts). */
  get values(): Tensor | null {
    this.#assertLive('PagePool.values');
    return this.#values;
  }

  get freePages(): number {
    return this.#free.length;
  }

  get usedPages(): number {
    return this.numPages - this.#free.length;
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Bytes of one page of K and V (payload plus scales). */
  get bytesPerPage(): number {
    const { kvHeads, keyDim, valueDim, dtype, keyBlockSize, valueBlockSize } = this.layout;
    const perToken = this.backend.storageBytes(dtype, kvHeads * keyDim, keyBlockSize) + (this.#values ? this.backend.storageBytes(dtype, kvHeads * valueDim, valueBlockSize) : 0);
    return perToken * this.pageSize;
  }

  /** Bytes the pool holds: every page, used or not. */
  get nbytes(): number {
    return this.#disposed ? 0 : this.bytesPerPage * this.numPages;
  }

  /** Holders of `page` (0 when free). */
  refCount(page: number): number {
    this.#checkPage('PagePool.refCount', page);
    return this.#refs[page] as number;
  }

  /** Takes a free page (reference count 1). Throws CapacityError when none is left. */
  allocate(): number {
    this.#assertLive('PagePool.allocate');
    const page = this.#free.pop();
    if (page === undefined) throw new CapacityError({ fn: 'PagePool.allocate', expected: 'a free page', got: `all ${this.numPages} pages in use` });
    this.#refs[page] = 1;
    return page;
  }

  /** Adds a holder to a page in use (a fork sharing it). */
  retain(page: number): void {
    this.#checkPage('PagePool.retain', page);
    if (this.#refs[page] === 0) throw new ConfigError({ fn: 'PagePool.retain', expected: 'a page in use', got: `free page ${page}` });
    this.#refs[page] = (this.#refs[page] as number) + 1;
  }

  /** Drops a holder; the page is free again when none is left. */
  release(page: number): void {
    this.#checkPage('PagePool.release', page);
    const refs = this.#refs[page] as number;
    if (refs === 0) throw new ConfigError({ fn: 'PagePool.release', expected: 'a page in use', got: `free page ${page}` });
    this.#refs[page] = refs - 1;
    if (refs === 1) this.#free.push(page);
  }

  /** Frees the pool's device memory. Caches still drawing from it become unusable. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.#keys.dispose();
    this.#values?.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  #assertLive(fn: string): void {
    if (this.#disposed) throw new BackendError({ fn, expected: 'a live page pool', got: 'a pool after dispose()' });
  }

  #checkPage(fn: string, page: number): void {
    this.#assertLive(fn);
    if (!Number.isInteger(page) || page < 0 || page >= this.numPages) {
      throw new ConfigError({ fn, expected: `a page in [0, ${this.numPages})`, got: String(page) });
    }
  }
}
