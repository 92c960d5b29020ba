// CPU storage: one typed array per tensor, in the tensor's storage dtype, plus per-block f32
// scales for quantised dtypes (blocks run along the last axis, in flat order).

import { decodeBf16, decodeF16, encodeBf16, encodeF16, f32ToFp8E4m3, fp8E4m3ToF32 } from '../dtype.js';

export type CpuStorage =
  | { readonly dtype: 'f32'; readonly data: Float32Array }
  | { readonly dtype: 'i32'; readonly data: Int32Array }
  | { readonly dtype: 'f16' | 'bf16'; readonly data: Uint16Array }
  | { readonly dtype: 'int8'; readonly data: Int8Array; readonly scales: Float32Array; readonly blockSize: number }
  | { readonly dtype: 'fp8e4m3'; readonly data: Uint8Array; readonly scales: Float32Array; readonly blockSize: number };

export function storageByteLength(s: CpuStorage): number {
  switch (s.dtype) {
    case 'int8':
    case 'fp8e4m3':
      return s.data.byteLength + s.scales.byteLength;
    default:
      return s.data.byteLength;
  }
}

/** Decodes elements [start, start+count) of any storage into f32 `out` at `outOffset`. */
export function decodeRange(s: CpuStorage, start: number, count: number, out: Float32Array, outOffset = 0): void {
  switch (s.dtype) {
    case 'f32':
      out.set(s.data.subarray(start, start + count), outOffset);
      return;
    case 'i32':
      for (let i = 0; i < count; i++) out[outOffset + i] = s.data[start + i] as number;
      return;
    case 'f16':
      decodeF16(s.data.subarray(start, start + count), out.subarray(outOffset, outOffset + count));
      return;
    case 'bf16':
      decodeBf16(s.data.subarray(start, start + count), out.subarray(outOffset, outOffset + count));
      return;
    case 'int8': {
      const { data, scales, blockSize } = s;
      for (let i = 0; i < count; i++) {
        const j = start + i;
        out[outOffset + i] = (data[j] as number) * (scales[Math.floor(j / blockSize)] as number);
      }
      return;
    }
    case 'fp8e4m3': {
      const { data, scales, blockSize } = s;
      const table = FP8_E4M3_VALUES;
      for (let i = 0; i < count; i++) {
        const j = start + i;
        out[outOffset + i] = (table[data[j] as number] as number) * (scales[Math.floor(j / blockSize)] as number);
      }
      return;
    }
  }
}

/** Whole storage as f32. */
export function decodeAll(s: CpuStorage): Float32Array {
  if (s.dtype === 'f32') return s.data;
  const out = new Float32Array(s.data.length);
  decodeRange(s, 0, s.data.length, out);
  return out;
}

/**
 * Encodes f32 `values` into storage elements [start, start+values.length). For quantised
 * storage `start` and the length must cover whole blocks: each block's scale is recomputed.
 */
export function encodeRange(s: CpuStorage, start: number, values: Float32Array): void {
  switch (s.dtype) {
    case 'f32':
      s.data.set(values, start);
      return;
    case 'i32':
      for (let i = 0; i < values.length; i++) s.data[start + i] = Math.trunc(values[i] as number);
      return;
    case 'f16':
      s.data.set(encodeF16(values), start);
      return;
    case 'bf16':
      s.data.set(encodeBf16(values), start);
      return;
    case 'int8':
    case 'fp8e4m3': {
      const { blockSize } = s;
      for (let b0 = 0; b0 < values.length; b0 += blockSize) {
        let amax = 0;
        for (let i = b0; i < b0 + blockSize; i++) amax = Math.max(amax, Math.abs(values[i] as number));
        const scale = Math.fround(s.dtype === 'int8' ? (amax > 0 ? amax / 127 : 1) : Math.max(amax, 1e-4) / 448);
        s.scales[(start + b0) / blockSize] = scale;
        for (let i = b0; i < b0 + blockSize; i++) {
          const x = (values[i] as number) / scale;
          if (s.dtype === 'int8') s.data[start + i] = Math.max(-127, Math.min(127, Math.round(x)));
          else s.data[start + i] = f32ToFp8E4m3(x);
        }
      }
      return;
    }
  }
}

/** Copies elements between storages of the same dtype (scales move with whole blocks). */
export function copyRange(src: CpuStorage, srcStart: number, dst: CpuStorage, dstStart: number, count: number): void {
  if (src.dtype !== dst.dtype) {
    const tmp = new Float32Array(count);
    decodeRange(src, srcStart, count, tmp);
    encodeRange(dst, dstStart, tmp);
    return;
  }
  switch (src.dtype) {
    case 'int8':
    case 'fp8e4m3': {
      if (dst.dtype !== 'int8' && dst.dtype !== 'fp8e4m3') return;
      dst.data.set(src.data.subarray(srcStart, srcStart + count), dstStart);
      const bs = src.blockSize;
      dst.scales.set(src.scales.subarray(srcStart / bs, (srcStart + count) / bs), dstStart / bs);
      return;
    }
    case 'f32':
      if (dst.dtype === 'f32') dst.data.set(src.data.subarray(srcStart, srcStart + count), dstStart);
      return;
    case 'i32':
      if (dst.dtype === 'i32') dst.data.set(src.data.subarray(srcStart, srcStart + count), dstStart);
      return;
    case 'f16':
    case 'bf16':
      if (dst.dtype === 'f16' || dst.dtype === 'bf16') dst.data.set(src.data.subarray(srcStart, srcStart + count), dstStart);
      return;
  }
}

/** The 256 FP8 E4M3 values by code: a constant lookup table, never written after it is built. */
export const FP8_E4M3_VALUES: Readonly<Float32Array> = /* @__PURE__ */ buildFp8Table();

function buildFp8Table(): Float32Array {
  const t = new Float32Array(256);
  for (let c = 0; c < 256; c++) t[c] = fp8E4m3ToF32(c);
  return t;
}
