// Storage dtypes. Compute and accumulation are always f32; the narrower types exist to store
// weights and caches compactly and are widened when a kernel reads them.

/**
 * - `f32`: IEEE binary32, the compute type.
 * - `f16`: IEEE binary16 bits in a Uint16Array.
 * - `bf16`: bfloat16 bits (the high half of an f32) in a Uint16Array, rounded to nearest even.
 * - `int8`: symmetric int8 codes with one f32 scale per block of the last axis.
 * - `fp8e4m3`: OCP FP8 E4M3 (finite-only "fn" variant, max ±448) codes with per-block f32 scales.
 * - `i32`: integer indices (top-k results, token ids, positions).
 */
export type DType = 'f32' | 'f16' | 'bf16' | 'int8' | 'fp8e4m3' | 'i32';

export type FloatDType = 'f32' | 'f16' | 'bf16';
export type QuantizedDType = 'int8' | 'fp8e4m3';

export const DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'int8', 'fp8e4m3', 'i32'];

/** Bytes per stored element, not counting block scales. */
export function bytesPerElement(dtype: DType): number {
  switch (dtype) {
    case 'f32':
    case 'i32':
      return 4;
    case 'f16':
    case 'bf16':
      return 2;
    case 'int8':
    case 'fp8e4m3':
      return 1;
  }
}

export function isQuantized(dtype: DType): dtype is QuantizedDType {
  return dtype === 'int8' || dtype === 'fp8e4m3';
}

export function isFloat(dtype: DType): dtype is FloatDType {
  return dtype === 'f32' || dtype === 'f16' || dtype === 'bf16';
}

/** Bytes a tensor of `size` elements takes, block scales (f32 each) included. */
export function storageBytes(dtype: DType, size: number, blockSize?: number): number {
  const payload = size * bytesPerElement(dtype);
  if (!isQuantized(dtype)) return payload;
  const block = blockSize ?? size;
  return payload + Math.ceil(size / block) * 4;
}

// ---------------------------------------------------------------------------------------------
// Bit-level conversions. Scratch views are allocated per call: no module-level mutable state.

/** f32 → bf16 bits, round to nearest even; NaN stays a quiet NaN. */
export function f32ToBf16Bits(value: number): number {
  const f = new Float32Array([value]);
  const bits = new Uint32Array(f.buffer)[0] as number;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) return ((bits >>> 16) | 0x0040) & 0xffff;
  const rounding = 0x7fff + ((bits >>> 16) & 1);
  return ((bits + rounding) >>> 16) & 0xffff;
}

export function bf16BitsToF32(bits: number): number {
  const u = new Uint32Array([(bits & 0xffff) << 16]);
  return new Float32Array(u.buffer)[0] as number;
}

/** f32 → IEEE binary16 bits, round to nearest even, overflow to ±Infinity. */
export function f32ToF16Bits(value: number): number {
  const f = new Float32Array([value]);
  const x = new Uint32Array(f.buffer)[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 : 0); // Inf or NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00; // overflow
  if (e <= 0) {
    // subnormal half (or zero): shift the implicit 1 in, round to nearest even
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let m = mant >>> shift;
    if (rest > half || (rest === half && (m & 1) === 1)) m += 1;
    return sign | m;
  }
  const rest = mant & 0x1fff;
  let m = mant >>> 13;
  if (rest > 0x1000 || (rest === 0x1000 && (m & 1) === 1)) {
    m += 1;
    if (m === 0x400) {
      m = 0;
      e += 1;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

export function f16BitsToF32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** Largest finite FP8 E4M3 ("fn") magnitude. */
export const FP8_E4M3_MAX = 448;

/**
 * f32 → FP8 E4M3 code (bias 7, 3 mantissa bits, no infinities, 0x7f/0xff = NaN), round to
 * nearest even, saturating to ±448 as DeepSeek's `act_quant` clamps before its cast.
 */
export function f32ToFp8E4m3(value: number): number {
  if (Number.isNaN(value)) return 0x7f;
  const sign = value < 0 || Object.is(value, -0) ? 0x80 : 0;
  const a = Math.abs(value);
  if (a >= FP8_E4M3_MAX) return sign | 0x7e; // saturate: 0x7e = 448
  if (a < 2 ** -10) {
    // below half of the smallest subnormal (2^-9): rounds to zero (or to 2^-9 above the tie)
    return a > 2 ** -10 ? sign | 1 : sign;
  }
  let exp = Math.floor(Math.log2(a));
  // guard against log2 rounding at exact powers of two
  if (2 ** exp > a) exp -= 1;
  if (2 ** (exp + 1) <= a) exp += 1;
  if (exp < -6) {
    // subnormal: value = m · 2^-9, m in 0..7
    const m = roundHalfEven(a / 2 ** -9);
    if (m >= 8) return sign | (1 << 3); // rounds up into the smallest normal
    return sign | m;
  }
  let m = roundHalfEven((a / 2 ** exp - 1) * 8);
  if (m === 8) {
    m = 0;
    exp += 1;
  }
  const e = exp + 7;
  if (e > 15 || (e === 15 && m === 7)) return sign | 0x7e;
  return sign | (e << 3) | m;
}

export function fp8E4m3ToF32(code: number): number {
  const sign = code & 0x80 ? -1 : 1;
  const e = (code >>> 3) & 0xf;
  const m = code & 0x7;
  if (e === 15 && m === 7) return NaN;
  if (e === 0) return sign * m * 2 ** -9;
  return sign * (1 + m / 8) * 2 ** (e - 7);
}

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 ? 2 * Math.round(x / 2) : r;
}

/** Rounds x to the nearest f32 (Math.fround), kept for symmetry with the helpers above. */
export const roundToF32 = Math.fround;

// ---------------------------------------------------------------------------------------------
// Whole-array encoders used by uploads and by the CPU backend.

export function encodeF16(values: ArrayLike<number>): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32ToF16Bits(values[i] as number);
  return out;
}

export function decodeF16(bits: Uint16Array, out: Float32Array = new Float32Array(bits.length)): Float32Array {
  for (let i = 0; i < bits.length; i++) out[i] = f16BitsToF32(bits[i] as number);
  return out;
}

export function encodeBf16(values: ArrayLike<number>): Uint16Array {
  const f = Float32Array.from(values);
  const u = new Uint32Array(f.buffer);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < u.length; i++) {
    const bits = u[i] as number;
    if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) {
      out[i] = ((bits >>> 16) | 0x0040) & 0xffff;
    } else {
      out[i] = ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
    }
  }
  return out;
}

export function decodeBf16(bits: Uint16Array, out: Float32Array = new Float32Array(bits.length)): Float32Array {
  const u = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < bits.length; i++) u[i] = (bits[i] as number) << 16;
  return out;
}

/** How block scales are chosen when quantising. */
export interface QuantizeOptions {
  /** Values per scale along the last axis (DeepSeek: 128). Must divide the last dimension. */
  readonly blockSize: number;
  /**
   * `'exact'`: scale = amax / qmax. `'ue8m0'`: DeepSeek's power-of-two scales, rounded up
   * (fp8 only, scale = 2^ceil(log2(max(amax, 1e-4) / 448))).
   */
  readonly scaleFormat?: 'exact' | 'ue8m0';
}

export interface QuantizedBlocks {
  readonly codes: Int8Array | Uint8Array;
  readonly scales: Float32Array;
  readonly blockSize: number;
}

/** Quantises `values` (row-major, blocks along the flat order) into codes and per-block scales. */
export function quantizeBlocks(values: ArrayLike<number>, dtype: QuantizedDType, options: QuantizeOptions): QuantizedBlocks {
  const { blockSize } = options;
  const n = values.length;
  const blocks = Math.ceil(n / blockSize);
  const scales = new Float32Array(blocks);
  const codes = dtype === 'int8' ? new Int8Array(n) : new Uint8Array(n);
  for (let b = 0; b < blocks; b++) {
    const start = b * blockSize;
    const end = Math.min(n, start + blockSize);
    let amax = 0;
    for (let i = start; i < end; i++) amax = Math.max(amax, Math.abs(values[i] as number));
    let scale: number;
    if (dtype === 'int8') {
      scale = amax > 0 ? amax / 127 : 1;
    } else {
      scale = Math.max(amax, 1e-4) / FP8_E4M3_MAX;
      if (options.scaleFormat === 'ue8m0') scale = 2 ** Math.ceil(Math.log2(scale));
    }
    scale = Math.fround(scale);
    scales[b] = scale;
    for (let i = start; i < end; i++) {
      const x = (values[i] as number) / scale;
      codes[i] = dtype === 'int8' ? Math.max(-127, Math.min(127, Math.round(x))) : f32ToFp8E4m3(x);
    }
  }
  return { codes, scales, blockSize };
}

/** Inverse of quantizeBlocks. */
export function dequantizeBlocks(
  blocks: QuantizedBlocks,
  dtype: QuantizedDType,
  out: Float32Array = new Float32Array(blocks.codes.length),
): Float32Array {
  const { codes, scales, blockSize } = blocks;
  for (let i = 0; i < codes.length; i++) {
    const scale = scales[Math.floor(i / blockSize)] as number;
    const code = codes[i] as number;
    out[i] = (dtype === 'int8' ? code : fp8E4m3ToF32(code)) * scale;
  }
  return out;
}
