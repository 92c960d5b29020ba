// What every gpu.js kernel of this backend shares: the shape of gpu.js' `this`, the arrays it
// binds, output grids, and the rules kernel sources follow.
//
// Rules for kernel sources (gpu.js compiles them from their text to WGSL, WebAssembly or JS):
// - Plain functions, no closures: sizes arrive as Integer parameters.
// - Local variables are f32 in WGSL and WebAssembly, whatever their initialiser. Integer
//   arithmetic stays i32 only inline: index expressions are written out where they are used
//   (or cast back with `| 0`), never kept in a local. Loop counters start at a literal 0.
// - `/` and `%` are f32 divisions. Where a quotient of two integers is unavoidable it is
//   `Math.floor((a + 0.5) / b)`, exact for a < 2^20 even with WGSL's 2.5-ulp division
//   (the host checks the bound before dispatch).
// - Arrays cannot be passed to helper functions; decoding is written inline.

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

/** Numerators below this are safe for `Math.floor((a + 0.5) / b)` on every mode. */
export const SAFE_DIVISION_LIMIT = 2 ** 20;

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

export function checkSafeDivision(fn: string, what: string, numeratorBound: number): void {
  if (numeratorBound > SAFE_DIVISION_LIMIT) {
    throw new BackendError({ fn, expected: `${what} below ${SAFE_DIVISION_LIMIT} on the gpu.js backends`, got: String(numeratorBound) });
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

/** 2^(i − 150) for i in [0, 278): exact powers of two (2^-150 … 2^127) for kernels that round or scale. */
export function pow2Table(): Float32Array {
  const t = new Float32Array(278);
  for (let i = 0; i < 278; i++) t[i] = 2 ** (i - 150);
  return t;
}
