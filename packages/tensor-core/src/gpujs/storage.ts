// How a tensor lives on a gpu.js backend. gpu.js kernels read arrays as f32 numbers (no bit
// casts), so each dtype is stored as numbers a kernel can decode with exact arithmetic:
//
// | dtype          | format   | a word holds                           | device bytes / element          |
// |----------------|----------|----------------------------------------|---------------------------------|
// | f32            | value    | the value                              | 4                               |
// | f16, bf16      | value    | the value, already rounded to the type | 4 (widened: gpu.js reads f32)   |
// | i32            | value    | the integer as f32 (exact to ±2^24)    | 4                               |
// | int8, fp8e4m3  | bytepair | codes 2e and 2e+1 as lo + 256·hi       | 2 on webgpu (f32 words), 1 on the host modes (u16 words), plus 4 per block scale |
//
// A tensor whose words exceed one binding (WebGPU's maxStorageBufferBindingSize, 128 MiB on
// lavapipe) is split into chunks of whole last-axis rows; quantised chunks carry their own
// block scales. Chunk boundaries are element offsets, so kernels that accept split inputs
// select the part of their work that falls into each chunk with integer arithmetic.

import { type DType, isQuantized } from '../dtype.js';
import { BackendError, formatShape } from '../errors.js';
import type { Shape } from '../shape.js';
import type { Device, DeviceArray, WordKind } from './device.js';

export type StorageFormat = 'value' | 'bytepair';

export interface Chunk {
  /** First element of the tensor in this chunk. */
  readonly start: number;
  /** Elements in this chunk. */
  readonly length: number;
  readonly words: DeviceArray;
  /** f32 block scales of a quantised chunk (blocks [start/bs, (start+length)/bs)). */
  readonly scales: DeviceArray | null;
}

export interface Storage {
  readonly dtype: DType;
  readonly format: StorageFormat;
  readonly size: number;
  readonly blockSize: number | undefined;
  readonly chunks: readonly Chunk[];
  /** Tensor handles sharing this storage (reshape views). */
  refs: number;
}

export function formatOf(dtype: DType): StorageFormat {
  return isQuantized(dtype) ? 'bytepair' : 'value';
}

/** Words of `count` elements in a format. */
export function wordsOf(format: StorageFormat, count: number): number {
  return format === 'value' ? count : Math.ceil(count / 2);
}

/** Host word kind of a format (value arrays are f32, byte pairs fit in 16 bits). */
export function wordKindOf(format: StorageFormat): WordKind {
  return format === 'value' ? 'f32' : 'u16';
}

/**
 * Element ranges of the chunks of a tensor: one chunk when its words fit `maxBindingBytes`
 * (as f32 words, the form every mode binds), else chunks of whole last-axis rows (an even
 * number of elements for byte pairs).
 */
export function planChunks(shape: Shape, dtype: DType, maxBindingBytes: number, fn: string): { start: number; length: number }[] {
  const size = shape.reduce((a, b) => a * b, 1);
  const format = formatOf(dtype);
  if (size === 0) return [];
  if (wordsOf(format, size) * 4 <= maxBindingBytes) return [{ start: 0, length: size }];
  const last = shape[shape.length - 1] ?? 1;
  const unit = format === 'bytepair' && last % 2 === 1 ? 2 * last : last;
  const unitsPerChunk = Math.floor(maxBindingBytes / (wordsOf(format, unit) * 4));
  if (unitsPerChunk < 1) {
    throw new BackendError({
      fn,
      expected: `one ${dtype} row of ${formatShape(shape)} to fit a ${maxBindingBytes}-byte binding`,
      got: `a row of ${unit} elements (${wordsOf(format, unit) * 4} bytes)`,
    });
  }
  const per = unitsPerChunk * unit;
  const chunks: { start: number; length: number }[] = [];
  for (let start = 0; start < size; start += per) chunks.push({ start, length: Math.min(per, size - start) });
  return chunks;
}

export function storageBytes(s: Storage): number {
  let bytes = 0;
  for (const c of s.chunks) bytes += c.words.bytes + (c.scales?.bytes ?? 0);
  return bytes;
}

export function storageBufferCount(s: Storage): number {
  let n = 0;
  for (const c of s.chunks) n += c.scales ? 2 : 1;
  return n;
}

export function freeStorage(device: Device, s: Storage): void {
  for (const c of s.chunks) {
    device.free(c.words);
    if (c.scales) device.free(c.scales);
  }
}

/** Unpacks `length` byte codes from words read back as numbers. */
export function unpackBytePairs(words: Float32Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    const w = words[i >> 1] as number;
    out[i] = i & 1 ? (w >> 8) & 255 : w & 255;
  }
  return out;
}
