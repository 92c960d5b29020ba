// Storage conversions: rounding values to f16/bf16 (round to nearest even, with exact
// power-of-two scaling from a table, so every mode agrees with the host encoders), block
// quantisation to int8/fp8e4m3 (scales, then codes, then byte-pair packing) and its inverse.

import type { DType } from '../../dtype.js';
import type { Tensor } from '../../tensor.js';
import type { GpujsBackend } from '../backend.js';
import type { DeviceArray } from '../device.js';
import type { KernelSpec } from '../runtime.js';
import { type Chunk, type Storage, wordsOf } from '../storage.js';
import { type Arr, type Gpu, INDEX_HELPERS, checkQuotients, divRounded, fp8Table, idiv, isNan, pow2Table } from './common.js';
import { MAP, UNARY_CODE } from './elementwise.js';
import { packBytes } from './layout.js';

/** t rounded to the nearest integer, ties to even. */
function roundHalfEven(t: number): number {
  const fl = Math.floor(t);
  const fr = t - fl;
  if (fr > 0.5 || (fr === 0.5 && fl - 2 * Math.floor(fl * 0.5) === 1)) return fl + 1;
  return fl;
}

// v rounded to a float with `mant` mantissa bits and minimum exponent `minExp` (f16: 10, −14;
// bf16: 7, −126); |v| ≥ `overflow` becomes ±`inf`. pow2[i] = 2^(i − 150).
function roundFloatKernel(this: Gpu, x: Arr, mant: number, minExp: number, overflow: number, inf: number): number {
  const v = x[this.thread.x];
  const a = Math.abs(v);
  if (isNan(a) === 1 || a === 0) return v;
  if (a >= overflow) return v > 0 ? inf : -inf;
  let e = Math.max(Math.floor(Math.log2(a)), minExp);
  if (a >= this.constants.pow2[e + 151]) e = e + 1;
  if (e > minExp && a < this.constants.pow2[e + 150]) e = e - 1;
  // a / 2^(e − mant), scaled in two exact steps so no factor leaves the f32 range
  const q = a * this.constants.pow2[Math.min(mant - e, 100) + 150] * this.constants.pow2[mant - e - Math.min(mant - e, 100) + 150];
  const y = roundHalfEven(q) * this.constants.pow2[e - mant + 150];
  return v < 0 ? -y : y;
}

const ROUND_FLOAT: KernelSpec = {
  key: 'round-float',
  fn: roundFloatKernel,
  params: { x: 'array', mant: 'int', minExp: 'int', overflow: 'float', inf: 'float' },
  rank: 1,
  constants: { pow2: pow2Table() },
  functions: [roundHalfEven, isNan],
};

/** Values rounded to f16 or bf16 (as f32 numbers), or truncated to integers for i32. */
export function roundValues(backend: GpujsBackend, words: DeviceArray, n: number, dtype: 'f16' | 'bf16' | 'i32'): Promise<DeviceArray> {
  if (dtype === 'i32') return backend.run(MAP, { x: words, op: UNARY_CODE.trunc, a: 0, b: 0 }, [n]);
  return dtype === 'f16'
    ? backend.run(ROUND_FLOAT, { x: words, mant: 10, minExp: -14, overflow: 65520, inf: Infinity }, [n])
    : backend.run(ROUND_FLOAT, { x: words, mant: 7, minExp: -126, overflow: (2 - 2 ** -8) * 2 ** 127, inf: Infinity }, [n]);
}

// Scale of block b: int8 amax/127 (1 for an all-zero block); fp8 max(amax, 1e-4)/448, rounded
// up to a power of two for the ue8m0 format.
function quantScalesKernel(this: Gpu, x: Arr, bs: number, fp8: number, ue8m0: number): number {
  let amax = 0;
  for (let j = 0; j < bs; j++) amax = Math.max(amax, Math.abs(x[this.thread.x * bs + j]));
  if (fp8 === 0) return amax > 0 ? divRounded(amax, 127) : 1;
  const s = divRounded(Math.max(amax, 0.0001), 448);
  if (ue8m0 === 0) return s;
  let e = Math.ceil(Math.log2(s));
  if (this.constants.pow2[e + 149] >= s) e = e - 1;
  if (this.constants.pow2[e + 150] < s) e = e + 1;
  return this.constants.pow2[e + 150];
}

const QUANT_SCALES: KernelSpec = {
  key: 'quant-scales',
  fn: quantScalesKernel,
  params: { x: 'array', bs: 'int', fp8: 'int', ue8m0: 'int' },
  rank: 1,
  constants: { pow2: pow2Table() },
  functions: [divRounded],
};

// Byte code of element e: int8 round(v/scale) clamped to ±127 (two's complement byte), or the
// FP8 E4M3 code of v/scale (round to nearest even, saturating at ±448, as the host encoder).
function quantCodesKernel(this: Gpu, x: Arr, scales: Arr, bs: number, fp8: number): number {
  const t = divRounded(x[this.thread.x], scales[idiv(this.thread.x, bs)]);
  if (fp8 === 0) {
    const r = Math.min(Math.max(Math.floor(t) + (t - Math.floor(t) >= 0.5 ? 1 : 0), -127), 127);
    return r < 0 ? r + 256 : r;
  }
  const a = Math.abs(t);
  const sign = t < 0 ? 128 : 0;
  if (isNan(a) === 1) return 127;
  if (a >= 448) return sign + 126;
  if (a <= 0.0009765625) return sign;
  let e = Math.floor(Math.log2(a));
  if (a >= this.constants.pow2[e + 151]) e = e + 1;
  if (a < this.constants.pow2[e + 150]) e = e - 1;
  if (e < -6) return sign + roundHalfEven(a * 512);
  let m = roundHalfEven((a * this.constants.pow2[150 - e] - 1) * 8);
  if (m === 8) {
    m = 0;
    e = e + 1;
  }
  if (e + 7 > 15 || (e + 7 === 15 && m === 7)) return sign + 126;
  return sign + (e + 7) * 8 + m;
}

const QUANT_CODES: KernelSpec = {
  key: 'quant-codes',
  fn: quantCodesKernel,
  params: { x: 'array', scales: 'array', bs: 'int', fp8: 'int' },
  rank: 1,
  constants: { pow2: pow2Table() },
  functions: [roundHalfEven, isNan, divRounded, ...INDEX_HELPERS],
};

// Value of element e: its code (from byte pairs) decoded and times its block's scale.
function dequantKernel(this: Gpu, words: Arr, scales: Arr, bs: number, fp8: number): number {
  const code = (words[this.thread.x >> 1] >> ((this.thread.x & 1) * 8)) & 255;
  let q = code >= 128 ? code - 256 : code;
  if (fp8 === 1) q = this.constants.fp8Values[code];
  return q * scales[idiv(this.thread.x, bs)];
}

const DEQUANT: KernelSpec = {
  key: 'dequant',
  fn: dequantKernel,
  params: { words: 'array', scales: 'array', bs: 'int', fp8: 'int' },
  rank: 1,
  constants: { fp8Values: fp8Table() },
  functions: INDEX_HELPERS,
};

/** Quantises n f32 values into byte-pair words and per-block scales. */
export async function quantizeValues(
  backend: GpujsBackend,
  values: DeviceArray,
  n: number,
  dtype: 'int8' | 'fp8e4m3',
  bs: number,
  scaleFormat: 'exact' | 'ue8m0',
): Promise<{ words: DeviceArray; scales: DeviceArray }> {
  checkQuotients('quantize', 'blocks per buffer', n / bs);
  const fp8 = dtype === 'fp8e4m3' ? 1 : 0;
  const scales = await backend.run(QUANT_SCALES, { x: values, bs, fp8, ue8m0: scaleFormat === 'ue8m0' ? 1 : 0 }, [n / bs]);
  try {
    const codes = await backend.run(QUANT_CODES, { x: values, scales, bs, fp8 }, [n]);
    try {
      return { words: await packBytes(backend, codes, n), scales };
    } finally {
      backend.device.free(codes);
    }
  } catch (error) {
    backend.device.free(scales);
    throw error;
  }
}

/** The f32 values of one quantised chunk. */
export function dequantizeChunk(backend: GpujsBackend, s: Storage, chunk: Chunk): Promise<DeviceArray> {
  const bs = s.blockSize ?? 1;
  checkQuotients('dequantize', 'blocks per buffer', chunk.length / bs);
  return backend.run(DEQUANT, { words: chunk.words, scales: chunk.scales ?? backend.dummy, bs, fp8: s.dtype === 'fp8e4m3' ? 1 : 0 }, [chunk.length]);
}

/**
 * The values of one chunk as f32 words: borrowed when the storage holds values already
 * (`owned` false), else decoded into a new array the caller frees.
 */
export async function chunkValues(backend: GpujsBackend, s: Storage, chunk: Chunk): Promise<{ words: DeviceArray; owned: boolean }> {
  if (s.format === 'value') return { words: chunk.words, owned: false };
  return { words: await dequantizeChunk(backend, s, chunk), owned: true };
}

/** Converts one chunk's elements to `dtype`'s storage (block size `bs` for int8/fp8). */
export async function convertChunk(
  backend: GpujsBackend,
  s: Storage,
  chunk: Chunk,
  dtype: DType,
  bs: number,
  scaleFormat: 'exact' | 'ue8m0',
): Promise<Chunk> {
  const values = await chunkValues(backend, s, chunk);
  try {
    if (dtype === 'int8' || dtype === 'fp8e4m3') {
      const q = await quantizeValues(backend, values.words, chunk.length, dtype, bs, scaleFormat);
      return { start: chunk.start, length: chunk.length, words: q.words, scales: q.scales };
    }
    // f32 keeps the values (a copy); f16/bf16 round them; i32 stays i32 (cast rejects the rest)
    const words =
      dtype === 'f16' || dtype === 'bf16'
        ? await roundValues(backend, values.words, chunk.length, dtype)
        : await backend.run(MAP, { x: values.words, op: UNARY_CODE.identity, a: 0, b: 0 }, [chunk.length]);
    return { start: chunk.start, length: chunk.length, words, scales: null };
  } finally {
    if (values.owned) backend.device.free(values.words);
  }
}

export async function castTensor(backend: GpujsBackend, x: Tensor, dtype: DType, blockSize: number, scaleFormat: 'exact' | 'ue8m0'): Promise<Tensor> {
  const s = backend.storageOf(x, 'cast');
  const quantized = dtype === 'int8' || dtype === 'fp8e4m3';
  if (x.size === 0) return backend.zeroSized(x.shape, dtype, quantized ? blockSize : undefined);
  const chunks: Chunk[] = [];
  try {
    for (const c of s.chunks) chunks.push(await convertChunk(backend, s, c, dtype, blockSize, scaleFormat));
  } catch (error) {
    for (const c of chunks) {
      backend.device.free(c.words);
      if (c.scales) backend.device.free(c.scales);
    }
    throw error;
  }
  return backend.adoptStorage(
    { dtype, format: quantized ? 'bytepair' : 'value', size: x.size, blockSize: quantized ? blockSize : undefined, chunks, refs: 1 },
    x.shape,
  );
}

/** Words a chunk of `length` elements takes in `dtype`'s storage. */
export function chunkWords(dtype: DType, length: number): number {
  return wordsOf(dtype === 'int8' || dtype === 'fp8e4m3' ? 'bytepair' : 'value', length);
}
