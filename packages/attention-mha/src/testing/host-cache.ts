// A small KVCache for the layer tests, kept on the host and uploaded on every fetch: either
// contiguous ([B, Tmax, Hkv, ·], padded) or paged (a shuffled row pool read through a row map).
// It implements the interface of @attnkit/kvcache plainly so the layer can be tested against
// the interface before (and independently of) the real caches.

import type { CacheView, KVCache } from '@attnkit/kvcache';
import { type Backend, CapacityError, type Tensor, tensor } from '@attnkit/tensor-core';

export class HostCache implements KVCache {
  readonly kind: string;
  readonly batchSize: number;
  readonly capacity: number;
  readonly dtype = 'f32' as const;
  readonly #keys: number[][][]; // [B][t] → row of Hkv·D values
  readonly #values: number[][][];
  readonly #paged: boolean;
  #view: Tensor[] = [];
  #backend: Backend | null = null;
  #rowWidths: [number, number] = [0, 0]; // Hkv·D and Hkv·Dv
  #heads = 0;

  constructor(batchSize: number, options: { paged?: boolean; capacity?: number } = {}) {
    this.batchSize = batchSize;
    this.#paged = options.paged ?? false;
    this.kind = this.#paged ? 'host-paged' : 'host-contiguous';
    this.capacity = options.capacity ?? Infinity;
    this.#keys = Array.from({ length: batchSize }, () => []);
    this.#values = Array.from({ length: batchSize }, () => []);
  }

  get lengths(): readonly number[] {
    return this.#keys.map((rows) => rows.length);
  }

  get nbytes(): number {
    return this.#keys.reduce((n, rows, b) => n + rows.length * ((rows[0]?.length ?? 0) + (this.#values[b]?.[0]?.length ?? 0)) * 4, 0);
  }

  async updateAndFetch(k: Tensor, v: Tensor | null): Promise<CacheView> {
    if (!v) throw new Error('HostCache stores values');
    const [B, S, Hkv, D] = k.shape as [number, number, number, number];
    const Dv = v.shape[3] as number;
    for (let b = 0; b < B; b++) {
      if ((this.#keys[b]?.length ?? 0) + S > this.capacity) throw new CapacityError({ fn: 'HostCache.updateAndFetch', expected: `room for ${S} tokens`, got: `${this.#keys[b]?.length} of ${this.capacity}` });
    }
    this.#backend = k.backend;
    this.#heads = Hkv;
    this.#rowWidths = [Hkv * D, Hkv * Dv];
    const kh = await k.data();
    const vh = await v.data();
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < S; s++) {
        const at = (b * S + s) * Hkv;
        this.#keys[b]?.push(Array.from(kh.subarray(at * D, (at + Hkv) * D)));
        this.#values[b]?.push(Array.from(vh.subarray(at * Dv, (at + Hkv) * Dv)));
      }
    }
    this.#release();
    const lengths = this.lengths;
    const Tmax = Math.max(...lengths);
    if (!this.#paged) {
      const keys = new Float32Array(B * Tmax * Hkv * D);
      const values = new Float32Array(B * Tmax * Hkv * Dv);
      for (let b = 0; b < B; b++) {
        this.#keys[b]?.forEach((row, t) => keys.set(row, (b * Tmax + t) * Hkv * D));
        this.#values[b]?.forEach((row, t) => values.set(row, (b * Tmax + t) * Hkv * Dv));
      }
      this.#view = [tensor(k.backend, keys, [B, Tmax, Hkv, D]), tensor(k.backend, values, [B, Tmax, Hkv, Dv])];
      return { keys: this.#view[0] as Tensor, values: this.#view[1] as Tensor, rowMap: null, lengths };
    }
    // Paged: rows in reverse order of arrival across sequences, one spare row, −1 past each length.
    const R = lengths.reduce((a, x) => a + x, 0) + 1;
    const keys = new Float32Array(R * Hkv * D);
    const values = new Float32Array(R * Hkv * Dv);
    const rowMap = new Int32Array(B * Tmax).fill(-1);
    let next = R - 1;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < (lengths[b] ?? 0); t++, next--) {
        rowMap[b * Tmax + t] = next;
        keys.set(this.#keys[b]?.[t] ?? [], next * Hkv * D);
        values.set(this.#values[b]?.[t] ?? [], next * Hkv * Dv);
      }
    }
    this.#view = [tensor(k.backend, keys, [R, Hkv, D]), tensor(k.backend, values, [R, Hkv, Dv]), tensor(k.backend, rowMap, [B, Tmax], { dtype: 'i32' })];
    return { keys: this.#view[0] as Tensor, values: this.#view[1] as Tensor, rowMap: this.#view[2] as Tensor, lengths };
  }

  readKeys(): Promise<Tensor> {
    return Promise.resolve(this.#logical(this.#keys, this.#rowWidths[0]));
  }

  readValues(): Promise<Tensor | null> {
    return Promise.resolve(this.#logical(this.#values, this.#rowWidths[1]));
  }

  /** Rows [B, Tmax, Hkv, W], zeros past each length. */
  #logical(rows: number[][][], width: number): Tensor {
    if (!this.#backend) throw new Error('HostCache: nothing appended yet');
    const Tmax = Math.max(...this.lengths);
    const out = new Float32Array(this.batchSize * Tmax * width);
    rows.forEach((seq, b) => seq.forEach((row, t) => out.set(row, (b * Tmax + t) * width)));
    return tensor(this.#backend, out, [this.batchSize, Tmax, this.#heads, width / this.#heads]);
  }

  truncate(length: number | readonly number[]): void {
    const targets = typeof length === 'number' ? new Array<number>(this.batchSize).fill(length) : length;
    targets.forEach((len, b) => {
      this.#keys[b]?.splice(len);
      this.#values[b]?.splice(len);
    });
  }

  #release(): void {
    this.#view.forEach((t) => t.dispose());
    this.#view = [];
  }

  dispose(): void {
    this.#release();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
