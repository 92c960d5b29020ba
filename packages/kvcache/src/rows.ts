// Device storage helpers shared by the caches: a [B, cap, H, W] tensor that grows in chunks,
// exact row copies, f32 read-back for inspection. Every write goes through tensor-core's
// writeSlice / scatterRows, which quantise per block on write; nothing is read to the host.

import {
  type Backend,
  type Tensor,
  affine,
  cast,
  mul,
  reshape,
  scatterRows,
  slice,
  tensor,
  writeSlice,
  zeros,
} from '@attnkit/tensor-core';
import type { StorageDType } from './types.js';

/** Uploads host row indices as an i32 [n] tensor (indices are metadata, never cache contents). */
export function indexTensor(backend: Backend, indices: readonly number[] | Int32Array, shape: readonly number[] = [indices.length]): Tensor {
  return tensor(backend, indices instanceof Int32Array ? indices : Int32Array.from(indices), shape, { dtype: 'i32' });
}

/**
 * Copies `count` rows of a pool [R, ...] from row `from` to row `to` of `dst` (the same tensor or
 * another of the same dtype and row shape). slice + writeSlice move quantised codes and their
 * scales as they are, so the copy is bit-exact in every storage dtype.
 */
export async function copyRows(src: Tensor, from: number, dst: Tensor, to: number, count: number): Promise<void> {
  if (count === 0) return;
  using piece = await slice(src, [from, ...src.shape.slice(1).map(() => 0)], [count, ...src.shape.slice(1)]);
  await writeSlice(dst, piece, 0, to);
}

/**
 * One [B, cap, H, W] tensor whose capacity grows in chunks of `step` tokens: a growth allocates
 * the larger tensor and copies the old one into it once (never per token).
 */
export class GrowableRows {
  readonly backend: Backend;
  readonly batchSize: number;
  readonly heads: number;
  readonly width: number;
  readonly dtype: StorageDType;
  readonly blockSize: number;
  #tensor: Tensor | null = null;
  #allocated = 0;

  constructor(backend: Backend, batchSize: number, heads: number, width: number, dtype: StorageDType, blockSize: number) {
    this.backend = backend;
    this.batchSize = batchSize;
    this.heads = heads;
    this.width = width;
    this.dtype = dtype;
    this.blockSize = blockSize;
  }

  /** The storage tensor; null until the first reserve. */
  get tensor(): Tensor | null {
    return this.#tensor;
  }

  /** Tokens per sequence the storage holds now. */
  get allocated(): number {
    return this.#allocated;
  }

  get nbytes(): number {
    return this.#tensor ? this.bytesFor(this.#allocated) : 0;
  }

  /** Bytes of storage for `tokens` tokens per sequence (payload plus scales). */
  bytesFor(tokens: number): number {
    return this.backend.storageBytes(this.dtype, this.batchSize * tokens * this.heads * this.width, this.blockSize);
  }

  /** Allocates `tokens` tokens per sequence when nothing is allocated yet (no copy, so synchronous). */
  allocateEmpty(tokens: number): void {
    if (this.#tensor || tokens === 0) return;
    this.#tensor = zeros(this.backend, [this.batchSize, tokens, this.heads, this.width], this.dtype, this.blockSize);
    this.#allocated = tokens;
  }

  /** Grows to `tokens` if smaller (the caller rounds up to its chunk). The old rows move once. */
  async reserve(tokens: number): Promise<void> {
    if (tokens <= this.#allocated) return;
    if (!this.#tensor) {
      this.allocateEmpty(tokens);
      return;
    }
    const next = zeros(this.backend, [this.batchSize, tokens, this.heads, this.width], this.dtype, this.blockSize);
    try {
      await writeSlice(next, this.#tensor, 1, 0);
    } catch (error) {
      next.dispose();
      throw error;
    }
    this.#tensor.dispose();
    this.#tensor = next;
    this.#allocated = tokens;
  }

  /**
   * Writes src [B, S, H, W] at token `starts[b]` of each sequence: one writeSlice when every
   * sequence starts at the same token, else one scatterRows over the flattened rows.
   */
  async append(src: Tensor, starts: readonly number[]): Promise<void> {
    const storage = this.#require();
    const S = src.shape[1] as number;
    const first = starts[0] ?? 0;
    if (starts.every((s) => s === first)) {
      await writeSlice(storage, src, 1, first);
      return;
    }
    const rows: number[] = [];
    for (const [b, start] of starts.entries()) for (let s = 0; s < S; s++) rows.push(b * this.#allocated + start + s);
    using flatSrc = reshape(src, [this.batchSize * S, this.heads, this.width]); // [B·S, H, W]
    await this.scatter(flatSrc, rows);
  }

  /** Writes src [N, H, W] to the flattened rows b·cap + t listed in `rows`. */
  async scatter(src: Tensor, rows: readonly number[]): Promise<void> {
    const storage = this.#require();
    using flat = reshape(storage, [this.batchSize * this.#allocated, this.heads, this.width]); // [B·cap, H, W]
    using idx = indexTensor(this.backend, rows);
    await scatterRows(flat, src, idx);
  }

  /** Flattened row index of token t of sequence b. */
  rowOf(b: number, t: number): number {
    return b * this.#allocated + t;
  }

  dispose(): void {
    this.#tensor?.dispose();
    this.#tensor = null;
    this.#allocated = 0;
  }

  #require(): Tensor {
    if (!this.#tensor) throw new Error('GrowableRows: write before reserve (an internal ordering bug)');
    return this.#tensor;
  }
}

/**
 * rows [B, T, H, W] (f32) with every row t ≥ lengths[b] set to zero; consumes `rows`. Used by
 * the read-back helpers so stale rows past a sequence's end never leak into results.
 */
export async function zeroPastLengths(rows: Tensor, lengths: readonly number[]): Promise<Tensor> {
  const [B, T] = rows.shape as readonly [number, number];
  if (lengths.every((len) => len >= T)) return rows;
  const mask = new Float32Array(B * T);
  for (let b = 0; b < B; b++) mask.fill(1, b * T, b * T + Math.min(T, lengths[b] ?? 0));
  try {
    using m = tensor(rows.backend, mask, [B, T, 1, 1]);
    using masked = await mul(rows, m);
    return await affine(masked, 1, 0); // −x·0 is −0: adding +0 makes the zeros plain
  } finally {
    rows.dispose();
  }
}

/**
 * Channels [from, from + width) of the first T tokens of a [B, cap, H, W] storage tensor, as
 * f32 [B, T, H, width] with rows past each length zeroed. Whole rows are sliced before the
 * dequantising cast, so quantised storage never needs a block-aligned channel range.
 */
export async function readContiguous(storage: Tensor, T: number, lengths: readonly number[], from = 0, width?: number): Promise<Tensor> {
  const [B, , H, W] = storage.shape as readonly [number, number, number, number];
  const w = width ?? W - from;
  if (T === 0) return zeros(storage.backend, [B, 0, H, w], 'f32');
  using rows = await slice(storage, [0, 0, 0, 0], [B, T, H, W]);
  let f32 = await cast(rows, 'f32');
  if (from !== 0 || w !== W) {
    try {
      const part = await slice(f32, [0, 0, 0, from], [B, T, H, w]);
      f32.dispose();
      f32 = part;
    } catch (error) {
      f32.dispose();
      throw error;
    }
  }
  return await zeroPastLengths(f32, lengths);
}
