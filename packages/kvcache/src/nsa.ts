// NSACache: the cache of Native Sparse Attention (spec §4): the raw K/V every branch reads
// (selection and window attend raw tokens) plus the compressed K/V blocks, maintained
// incrementally as tokens arrive.
//
// Contract (the NSA package codes against exactly this):
// - Compression block i of a sequence covers tokens [i·d, i·d + l − 1] (l = blockLength,
//   d = blockStride) and exists once it is complete: a sequence of T tokens has
//   N_cmp(T) = T < l ? 0 : ⌊(T − l)/d⌋ + 1 blocks (`compressedCount`).
// - The compression itself (φ: mean with intra-block PE, or an MLP) is NSA's math, so the cache
//   takes `compress(batch)`. After the raw rows of an append are written, the cache calls it
//   once with every block the append completed, across the batch, and never again for a block
//   (until a truncate drops it and new tokens complete it again):
//     batch.keys    f32 [N, l, Hkv, D]   raw keys of the N new blocks (token-major inside a block)
//     batch.values  f32 [N, l, Hkv, Dv]
//     batch.sequences[n], batch.blockIndices[n]: sequence b and block index i of block n;
//     blocks are ordered by sequence, then by i (increasing). Block n starts at token i·d.
//   It resolves to { keys [N, Hkv, D], values [N, Hkv, Dv] } (f32/f16/bf16, on the cache's
//   backend). The batch tensors are the cache's: they are disposed when the promise settles.
//   The returned tensors become the cache's: it copies them into its storage and disposes them
//   (returning a reshape of a batch tensor is fine). N is never 0 (no call then).
// - If `compress` throws or returns the wrong shapes, the append is undone (lengths and counts
//   as before) and the error propagates (ShapeError/DTypeError for bad results).
// - The view: the raw contiguous view (keys [B, Tcap, Hkv, D], values [B, Tcap, Hkv, Dv],
//   lengths) plus `compressed: { keys [B, Ncap, Hkv, D], values [B, Ncap, Hkv, Dv], counts,
//   blockLength, blockStride }`: block i of sequence b is row (b, i), valid for i < counts[b].
//   A query at position p may see block i iff i·d + l − 1 ≤ p (NSA's rule; the cache does not mask).
// - Truncating to T tokens drops the raw rows past T and the blocks past N_cmp(T).
// - Compressed rows use the cache's storage dtype (quantised per block on write, like the raw rows).

import { type Backend, BackendError, DTypeError, ShapeError, Tensor, formatShape, gather, reshape } from '@attnkit/tensor-core';
import { ContiguousKVCache } from './contiguous.js';
import { assertUsable, checkCapacity, expectPositiveInt, validateAppend } from './layout.js';
import { GrowableRows, indexTensor, readContiguous } from './rows.js';
import type { CacheView, KVCache, RowOptions, StorageDType, StorageOptions } from './types.js';

export interface NSACompressionBatch {
  /** f32 [N, l, Hkv, D]: raw keys of the newly completed blocks. */
  readonly keys: Tensor;
  /** f32 [N, l, Hkv, Dv]: raw values of the newly completed blocks. */
  readonly values: Tensor;
  /** Sequence (batch index) of each block. */
  readonly sequences: readonly number[];
  /** Index i of each block within its sequence; the block covers tokens [i·d, i·d + l − 1]. */
  readonly blockIndices: readonly number[];
}

export interface NSACompressedBlocks {
  /** [N, Hkv, D] */
  readonly keys: Tensor;
  /** [N, Hkv, Dv] */
  readonly values: Tensor;
}

/** φ over newly completed blocks; see the file header for the exact contract. */
export type NSACompressor = (batch: NSACompressionBatch) => Promise<NSACompressedBlocks>;

export interface NSACompressedView {
  /** `[B, Ncap, Hkv, D]`: block i of sequence b is row (b, i). */
  readonly keys: Tensor;
  /** [B, Ncap, Hkv, Dv] */
  readonly values: Tensor;
  /** Complete blocks per sequence: N_cmp(lengths[b]). */
  readonly counts: readonly number[];
  /** l */
  readonly blockLength: number;
  /** d */
  readonly blockStride: number;
}

export interface NSACacheView extends CacheView {
  readonly values: Tensor;
  readonly compressed: NSACompressedView;
}

export interface NSACacheOptions extends StorageOptions, Pick<RowOptions, 'kvHeads' | 'keyDim' | 'valueDim'> {
  readonly batchSize: number;
  /** l: tokens per compression block (paper: 32). */
  readonly blockLength: number;
  /** d: tokens between block starts (paper: 16). */
  readonly blockStride: number;
  readonly compress: NSACompressor;
  /** Raw tokens added per growth (default 256); the compressed store grows by ⌈step/d⌉ blocks. */
  readonly step?: number;
  /** Most raw tokens a sequence may hold (default Infinity). */
  readonly maxCapacity?: number;
  /** Raw tokens per sequence to allocate up front (default 0). */
  readonly initialCapacity?: number;
}

/** N_cmp(T): complete compression blocks among T tokens. */
export function compressedCount(tokens: number, blockLength: number, blockStride: number): number {
  return tokens < blockLength ? 0 : Math.floor((tokens - blockLength) / blockStride) + 1;
}

export class NSACache implements KVCache {
  readonly kind = 'nsa';
  readonly backend: Backend;
  readonly blockLength: number;
  readonly blockStride: number;
  readonly #compress: NSACompressor;
  readonly #raw: ContiguousKVCache;
  readonly #cKeys: GrowableRows;
  readonly #cValues: GrowableRows;
  readonly #blockStep: number;
  #counts: number[];
  #busy = false;

  constructor(backend: Backend, options: NSACacheOptions) {
    const fn = 'NSACache';
    this.backend = backend;
    this.blockLength = expectPositiveInt(fn, 'blockLength', options.blockLength);
    this.blockStride = expectPositiveInt(fn, 'blockStride', options.blockStride);
    if (typeof options.compress !== 'function') throw new ShapeError({ fn, expected: 'a compress callback', got: typeof options.compress });
    this.#compress = options.compress;
    this.#raw = new ContiguousKVCache(backend, { ...options, values: 'separate' }, fn);
    const { kvHeads, keyDim, valueDim, dtype, keyBlockSize, valueBlockSize } = this.#raw.layout;
    const B = this.#raw.batchSize;
    this.#cKeys = new GrowableRows(backend, B, kvHeads, keyDim, dtype, keyBlockSize);
    this.#cValues = new GrowableRows(backend, B, kvHeads, valueDim, dtype, valueBlockSize);
    this.#blockStep = Math.max(1, Math.ceil(this.#raw.step / this.blockStride));
    this.#counts = new Array<number>(B).fill(0);
  }

  get batchSize(): number {
    return this.#raw.batchSize;
  }

  get lengths(): readonly number[] {
    return this.#raw.lengths;
  }

  get capacity(): number {
    return this.#raw.capacity;
  }

  get dtype(): StorageDType {
    return this.#raw.dtype;
  }

  /** Complete compression blocks per sequence. */
  get compressedCounts(): readonly number[] {
    return [...this.#counts];
  }

  get nbytes(): number {
    return this.#raw.nbytes + this.#cKeys.nbytes + this.#cValues.nbytes;
  }

  async updateAndFetch(k: Tensor, v: Tensor | null): Promise<NSACacheView> {
    const fn = 'NSACache.updateAndFetch';
    assertUsable(fn, this.#raw.isDisposed, this.#busy);
    const S = validateAppend(fn, this.backend, this.#raw.layout, this.batchSize, k, v);
    checkCapacity(fn, this.#raw.lengths, S, this.capacity);
    this.#busy = true;
    const before = this.#raw.lengths;
    try {
      const raw = await this.#raw.updateAndFetch(k, v);
      const after = raw.lengths;
      const counts = after.map((len) => compressedCount(len, this.blockLength, this.blockStride));
      const sequences: number[] = [];
      const blockIndices: number[] = [];
      for (const [b, count] of counts.entries()) {
        for (let i = this.#counts[b] as number; i < count; i++) {
          sequences.push(b);
          blockIndices.push(i);
        }
      }
      await this.#ensureCompressedStorage(Math.max(1, ...counts));
      if (sequences.length > 0) await this.#compressBlocks(fn, raw, sequences, blockIndices);
      this.#counts = counts;
      return this.#view(raw);
    } catch (error) {
      this.#raw.truncate(before);
      throw error;
    } finally {
      this.#busy = false;
    }
  }

  async #ensureCompressedStorage(blocks: number): Promise<void> {
    const target = Math.ceil(blocks / this.#blockStep) * this.#blockStep;
    await this.#cKeys.reserve(target);
    await this.#cValues.reserve(target);
  }

  async #compressBlocks(fn: string, raw: CacheView, sequences: number[], blockIndices: number[]): Promise<void> {
    const { blockLength: l, blockStride: d } = this;
    const N = sequences.length;
    const { kvHeads: H, keyDim: D, valueDim: Dv } = this.#raw.layout;
    const cap = raw.keys.shape[1] as number;
    // Flattened raw row b·cap + i·d + j of token j of each new block.
    const rows = new Int32Array(N * l);
    for (let n = 0; n < N; n++) {
      const base = (sequences[n] as number) * cap + (blockIndices[n] as number) * d;
      for (let j = 0; j < l; j++) rows[n * l + j] = base + j;
    }
    const batch = await this.#gatherBlocks(raw, rows, N);
    let result: NSACompressedBlocks;
    try {
      result = await this.#compress({ keys: batch.keys, values: batch.values, sequences, blockIndices });
    } finally {
      batch.keys.dispose();
      batch.values.dispose();
    }
    try {
      checkCompressed(fn, this.backend, 'keys', result.keys, [N, H, D]);
      checkCompressed(fn, this.backend, 'values', result.values, [N, H, Dv]);
      await this.#cKeys.scatter(result.keys, sequences.map((b, n) => this.#cKeys.rowOf(b, blockIndices[n] as number)));
      await this.#cValues.scatter(result.values, sequences.map((b, n) => this.#cValues.rowOf(b, blockIndices[n] as number)));
    } finally {
      result.keys.dispose();
      result.values.dispose();
    }
  }

  /** The raw rows of the new blocks as f32 [N, l, Hkv, D] / [N, l, Hkv, Dv] (gather dequantises). */
  async #gatherBlocks(raw: CacheView, rows: Int32Array, N: number): Promise<{ keys: Tensor; values: Tensor }> {
    const { kvHeads: H, keyDim: D, valueDim: Dv } = this.#raw.layout;
    const cap = raw.keys.shape[1] as number;
    const values = raw.values;
    if (!values) throw new Error('NSACache: raw values missing (internal)');
    using idx = indexTensor(this.backend, rows);
    using flatKeys = reshape(raw.keys, [this.batchSize * cap, H, D]); // [B·cap, Hkv, D]
    using flatValues = reshape(values, [this.batchSize * cap, H, Dv]); // [B·cap, Hkv, Dv]
    using gk = await gather(flatKeys, idx); // [N·l, Hkv, D]
    using gv = await gather(flatValues, idx); // [N·l, Hkv, Dv]
    return { keys: reshape(gk, [N, this.blockLength, H, D]), values: reshape(gv, [N, this.blockLength, H, Dv]) };
  }

  view(): NSACacheView {
    assertUsable('NSACache.view', this.#raw.isDisposed, this.#busy);
    return this.#view(this.#raw.view());
  }

  #view(raw: CacheView): NSACacheView {
    const keys = this.#cKeys.tensor;
    const values = this.#cValues.tensor;
    if (!keys || !values || !raw.values) throw new Error('NSACache: view before storage (internal)');
    return {
      ...raw,
      values: raw.values,
      compressed: { keys, values, counts: Object.freeze([...this.#counts]), blockLength: this.blockLength, blockStride: this.blockStride },
    };
  }

  truncate(length: number | readonly number[]): void {
    assertUsable('NSACache.truncate', this.#raw.isDisposed, this.#busy);
    this.#raw.truncate(length);
    this.#counts = this.#raw.lengths.map((len) => compressedCount(len, this.blockLength, this.blockStride));
  }

  readKeys(): Promise<Tensor> {
    return this.#raw.readKeys();
  }

  readValues(): Promise<Tensor | null> {
    return this.#raw.readValues();
  }

  /** Compressed keys as f32 [B, Nmax, Hkv, D], rows past each count 0 (the golden `k_cmp`). */
  readCompressedKeys(): Promise<Tensor> {
    return this.#readCompressed('NSACache.readCompressedKeys', this.#cKeys);
  }

  /** Compressed values as f32 [B, Nmax, Hkv, Dv] (the golden `v_cmp`). */
  readCompressedValues(): Promise<Tensor> {
    return this.#readCompressed('NSACache.readCompressedValues', this.#cValues);
  }

  async #readCompressed(fn: string, rows: GrowableRows): Promise<Tensor> {
    assertUsable(fn, this.#raw.isDisposed, this.#busy);
    if (!rows.tensor) await this.#ensureCompressedStorage(1);
    const storage = rows.tensor;
    if (!storage) throw new Error(`${fn}: storage missing (internal)`);
    return readContiguous(storage, Math.max(...this.#counts), this.#counts);
  }

  dispose(): void {
    this.#raw.dispose();
    this.#cKeys.dispose();
    this.#cValues.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

function checkCompressed(fn: string, backend: Backend, name: string, t: unknown, shape: readonly number[]): void {
  const where = `${fn} (compress result)`;
  if (!(t instanceof Tensor)) throw new ShapeError({ fn: where, expected: `${name}: a tensor of shape ${formatShape(shape)}`, got: String(t) });
  t.assertAlive(where);
  if (t.backend !== backend) throw new BackendError({ fn: where, expected: `${name} on ${backend.info.name}`, got: `a tensor on ${t.backend.info.name}` });
  if (t.dtype !== 'f32' && t.dtype !== 'f16' && t.dtype !== 'bf16') throw new DTypeError({ fn: where, expected: `${name} of dtype f32, f16 or bf16`, got: t.dtype });
  if (t.rank !== shape.length || t.shape.some((dim, i) => dim !== shape[i])) {
    throw new ShapeError({ fn: where, expected: `${name} of shape ${formatShape(shape)} ([N, Hkv, D|Dv])`, got: formatShape(t.shape) });
  }
}
