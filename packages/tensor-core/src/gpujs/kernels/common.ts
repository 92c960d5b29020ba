// What every gpu.js kernel of this backend shares: the shape of gpu.js' `this`, the arrays it
// binds, output grids, and the rules kernel sources follow.
//
// Rules for kernel sources (gpu.js compiles them from their text to WGSL, WebAssembly or JS):
// - Plain functions, no closures: sizes arrive as Integer parameters.
// - Local variables are f32 in WGSL and WebAssembly, whatever their initialiser. Integer
//   arithmetic stays i32 only inline: index expressions are written out where they are used
//   (or cast back with `| 0`), never kept in a local. Loop counters start at a literal 0.
// - `/` and `%` are f32 divisions. Integer quotients go through the `idiv` helper (exact for
//   quotients below 2^22, which the host checks); helpers with integer parameters and integer
//   results stay i32 in WGSL and WebAssembly, so index decompositions live in helpers.
// - Arrays cannot be passed to helper functions; decoding is written inline.
// - No array read inside another array's index: read it into a local first. gpu.js' GLSL hoists
//   such an index into a float temporary and assigns it an int, which does not compile.
// - Each loop of a kernel needs its own counter name (gpu.js' JavaScript mode hoists them).
// - NaN is tested with the isNan helper, never `v !== v` (WGSL may fold that to false).
// - Constants must not share a name with a parameter (gpu.js then reads the wrong one).

import { BackendError } from '../../errors.js';
import type { OutputGrid } from '../runtime.js';

/** gpu.js' kernel `this`. */
export interface Gpu {
  readonly thread: { readonly x: number; readonly y: number; readonly z: number };
  readonly output: { readonly x: number; readonly y: number; readonly z: number };
  readonly constants: Readonly<Record<string, Arr>>;
}

/**
 * A bound array as a kernel sees it: f32 numbers by index. Typed loosely on purpose: with
 * `noUncheckedIndexedAccess` every read would be `number | undefined`, and kernel sources are
 * gpu.js' dialect, checked by compiling them on every mode (the unsafe-* lint rules are off in
 * kernel files for this reason).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Arr = any;

/** Quotients `idiv` computes exactly on every mode. */
export const QUOTIENT_LIMIT = 2 ** 22;

/**
 * ⌊a / b⌋ for 0 ≤ a < 2^31, b > 0, quotient < 2^22. The f32 estimate is within one of the
 * quotient (WGSL division is accurate to 2.5 ulp), and the remainder's sign bits correct it.
 */
export function idiv(a: number, b: number): number {
  const q = Math.floor((a + 0.5) / b);
  return (q | 0) + ((a - (q | 0) * b) >> 31) - ((b - 1 - (a - (q | 0) * b)) >> 31);
}

/** Offset of flat index e of a [·, d1] grid walked with strides (s0, s1). */
export function strided2(e: number, d1: number, s0: number, s1: number): number {
  return idiv(e, d1) * s0 + (e - idiv(e, d1) * d1) * s1;
}

/** Offset of flat index e of a [·, d1, d2] grid walked with strides (s0, s1, s2). */
export function strided3(e: number, d1: number, d2: number, s0: number, s1: number, s2: number): number {
  return idiv(e, d1 * d2) * s0 + strided2(e - idiv(e, d1 * d2) * d1 * d2, d2, s1, s2);
}

/** Offset of flat index e of a [·, d1, d2, d3] grid walked with strides (s0, s1, s2, s3). */
export function strided4(e: number, d1: number, d2: number, d3: number, s0: number, s1: number, s2: number, s3: number): number {
  return idiv(e, d1 * d2 * d3) * s0 + strided3(e - idiv(e, d1 * d2 * d3) * d1 * d2 * d3, d2, d3, s1, s2, s3);
}

/**
 * 1 when v is NaN, else 0. WGSL compilers may assume NaN never occurs and fold `v !== v` to
 * false; two ordered comparisons that both fail are only folded by much bolder optimisers.
 */
export function isNan(v: number): number {
  if (!(v >= -3.4e38) && !(v < -3.4e38)) return 1;
  return 0;
}

/**
 * a / b rounded to nearest in f32, for finite a and b with |a|, |b| below 2^100 (b ≠ 0). GL's
 * division is an approximation (SwiftShader: reciprocal and multiply, 1–2 ulp off), so the
 * quotient q is corrected by the exact residual a − q·b (Dekker's product: q and b split into
 * 12-bit halves, whose products are exact in f32). Where division is already exact (WebAssembly,
 * JavaScript) the residual rounds to a correction of zero.
 */
export function divRounded(a: number, b: number): number {
  const q = a / b;
  const tq = q * 4097;
  const qh = tq - (tq - q);
  const ql = q - qh;
  const tb = b * 4097;
  const bh = tb - (tb - b);
  const bl = b - bh;
  const p = q * b;
  const err = qh * bh - p + qh * bl + ql * bh + ql * bl;
  return q + (a - p - err) / b;
}

/** The index helpers, for a kernel spec's `functions`. */
export const INDEX_HELPERS: readonly ((...args: number[]) => number)[] = [idiv, strided2, strided3, strided4];

/** Largest extent of grid dimension y (WebGPU: 65535 workgroups of 8). */
export interface GridLimits {
  readonly maxY: number;
}

/**
 * A 3-D grid [x, y, z] covering `rows` rows of `x` threads: row = z·y + y. Rows beyond
 * `rows` (when y·z > rows) compute padding the tensor never reads.
 */
export function rowGrid(x: number, rows: number, limits: GridLimits): { grid: OutputGrid; Y: number } {
  const Y = Math.max(1, Math.min(rows, limits.maxY));
  const Z = Math.max(1, Math.ceil(rows / Y));
  return { grid: [x, Y, Z], Y };
}

/** Throws unless every quotient an index decomposition takes stays below QUOTIENT_LIMIT. */
export function checkQuotients(fn: string, what: string, ...bounds: number[]): void {
  for (const bound of bounds) {
    if (bound > QUOTIENT_LIMIT) {
      throw new BackendError({ fn, expected: `${what} below ${QUOTIENT_LIMIT} on the gpu.js backends`, got: String(bound) });
    }
  }
}

/** The 256 FP8 E4M3 values by code, for kernels that decode fp8 (a constant table). */
export function fp8Table(): Float32Array {
  const t = new Float32Array(256);
  for (let c = 0; c < 256; c++) {
    const sign = c & 0x80 ? -1 : 1;
    const e = (c >>> 3) & 0xf;
    const m = c & 0x7;
    t[c] = e === 15 && m === 7 ? NaN : e === 0 ? sign * m * 2 ** -9 : sign * (1 + m / 8) * 2 ** (e - 7);
  }
  return t;
}

/** 2^(i − 150) for i in [0, 279): exact powers of two 2^-150 … 2^127, then +∞, for kernels that round. */
export function pow2Table(): Float32Array {
  const t = new Float32Array(279);
  for (let i = 0; i < 279; i++) t[i] = 2 ** (i - 150);
  return t;
}
