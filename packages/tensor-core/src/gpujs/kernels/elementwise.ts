// Elementwise kernels: one map kernel for every unary op (and affine), and binary ops with
// NumPy broadcasting, collapsed to at most four index levels.

import { BackendError, formatShape } from '../../errors.js';
import type { BinaryOp, UnaryOp } from '../../kernels.js';
import { type Shape, broadcastShapes, broadcastStrides, sameShape, sizeOf } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import type { GpujsBackend } from '../backend.js';
import type { KernelSpec } from '../runtime.js';
import { type Arr, type Gpu, INDEX_HELPERS, checkQuotients, isNan, strided4 } from './common.js';

export const UNARY_CODE: Readonly<Record<UnaryOp | 'affine' | 'identity' | 'trunc', number>> = {
  silu: 0,
  relu: 1,
  sigmoid: 2,
  gelu: 3,
  gelu_tanh: 4,
  exp: 5,
  neg: 6,
  abs: 7,
  sqrt: 8,
  rsqrt: 9,
  square: 10,
  tanh: 11,
  affine: 12,
  identity: 13,
  trunc: 14,
};

const BINARY_CODE: Readonly<Record<BinaryOp, number>> = { add: 0, sub: 1, mul: 2, div: 3, max: 4, min: 5 };

/** erf with |error| < 1.2e-7 (the reference's Chebyshev fit). */
function erfApprox(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  if (x >= 0) return 1 - r;
  return r - 1;
}

/**
 * tanh accurate to a few ulps everywhere. Near 0 the usual (e^2x − 1)/(e^2x + 1) (and WGSL's
 * own tanh, specified through sinh/cosh) loses the low bits to cancellation, so |x| < 0.3125
 * uses the Taylor series to x^11 (truncation below 3e-9 relative); beyond, 1 − 2/(e^2|x| + 1)
 * with the argument clamped at 10, where f32 tanh is already ±1.
 */
function tanhAccurate(x: number): number {
  const a = Math.min(Math.abs(x), 10);
  if (a < 0.3125) {
    const s = x * x;
    return x * (1 + s * (-1 / 3 + s * (2 / 15 + s * (-17 / 315 + s * (62 / 2835 + s * (-1382 / 155925))))));
  }
  const t = 1 - 2 / (Math.exp(2 * a) + 1);
  return x < 0 ? -t : t;
}

function mapKernel(this: Gpu, x: Arr, op: number, a: number, b: number): number {
  const v = x[this.thread.x];
  if (op === 0) return v / (1 + Math.exp(-v));
  if (op === 1) return v > 0 ? v : 0;
  if (op === 2) return 1 / (1 + Math.exp(-v));
  if (op === 3) return 0.5 * v * (1 + erfApprox(v * 0.7071067811865476));
  if (op === 4) return 0.5 * v * (1 + tanhAccurate(0.7978845608028654 * (v + 0.044715 * v * v * v)));
  if (op === 5) return Math.exp(v);
  if (op === 6) return -v;
  if (op === 7) return Math.abs(v);
  if (op === 8) return Math.sqrt(v);
  if (op === 9) return 1 / Math.sqrt(v);
  if (op === 10) return v * v;
  if (op === 11) return tanhAccurate(v);
  if (op === 12) return v * a + b;
  if (op === 14) return Math.trunc(v);
  return v;
}

export const MAP: KernelSpec = {
  key: 'map',
  fn: mapKernel,
  params: { x: 'array', op: 'int', a: 'float', b: 'float' },
  rank: 1,
  functions: [erfApprox, tanhAccurate],
};

function fillKernel(this: Gpu, value: number): number {
  return value;
}

/** Every element `value` (infinities included: they arrive as a uniform, not a literal). */
export const FILL: KernelSpec = { key: 'fill', fn: fillKernel, params: { value: 'float' }, rank: 1 };

function applyBinary(op: number, u: number, v: number): number {
  if (op === 0) return u + v;
  if (op === 1) return u - v;
  if (op === 2) return u * v;
  if (op === 3) return u / v;
  if (op === 4) return u > v || isNan(u) === 1 ? u : v;
  return u < v || isNan(u) === 1 ? u : v;
}

function binaryFlatKernel(this: Gpu, a: Arr, b: Arr, op: number, aStep: number, bStep: number): number {
  return applyBinary(op, a[this.thread.x * aStep], b[this.thread.x * bStep]);
}

const BINARY_FLAT: KernelSpec = {
  key: 'binary-flat',
  fn: binaryFlatKernel,
  params: { a: 'array', b: 'array', op: 'int', aStep: 'int', bStep: 'int' },
  rank: 1,
  functions: [applyBinary, isNan],
};

// Output [d0, d1, d2, d3], flat index e decomposed by the index helpers into each operand's
// strided offset.
function binaryBroadcastKernel(
  this: Gpu,
  a: Arr,
  b: Arr,
  op: number,
  d1: number,
  d2: number,
  d3: number,
  a0: number,
  a1: number,
  a2: number,
  a3: number,
  b0: number,
  b1: number,
  b2: number,
  b3: number,
): number {
  return applyBinary(op, a[strided4(this.thread.x, d1, d2, d3, a0, a1, a2, a3)], b[strided4(this.thread.x, d1, d2, d3, b0, b1, b2, b3)]);
}

const BINARY_BROADCAST: KernelSpec = {
  key: 'binary-broadcast',
  fn: binaryBroadcastKernel,
  params: { a: 'array', b: 'array', op: 'int', d1: 'int', d2: 'int', d3: 'int', a0: 'int', a1: 'int', a2: 'int', a3: 'int', b0: 'int', b1: 'int', b2: 'int', b3: 'int' },
  rank: 1,
  functions: [applyBinary, isNan, ...INDEX_HELPERS],
};

/** Unary op, affine, or identity copy of an unsplit f32 tensor. */
export async function mapTensor(backend: GpujsBackend, x: Tensor, op: UnaryOp | 'affine' | 'identity', a = 0, b = 0): Promise<Tensor> {
  const out = await backend.run(MAP, { x: backend.arrayOf(x, 'map'), op: UNARY_CODE[op], a, b }, [x.size]);
  return backend.wrap(out, x.shape);
}

export async function binaryTensor(backend: GpujsBackend, a: Tensor, b: Tensor, op: BinaryOp): Promise<Tensor> {
  const shape = broadcastShapes(a.shape, b.shape, 'binary');
  const size = sizeOf(shape);
  const A = backend.arrayOf(a, 'binary');
  const B = backend.arrayOf(b, 'binary');
  if (size === 0) return backend.zeroSized(shape);
  const code = BINARY_CODE[op];
  const full = (t: Tensor): boolean => t.size === size && sameShape(t.shape.length === shape.length ? t.shape : padShape(t.shape, shape.length), shape);
  if ((full(a) || a.size === 1) && (full(b) || b.size === 1)) {
    const out = await backend.run(BINARY_FLAT, { a: A, b: B, op: code, aStep: a.size === 1 ? 0 : 1, bStep: b.size === 1 ? 0 : 1 }, [size]);
    return backend.wrap(out, shape);
  }
  const levels = collapseBroadcast(shape, [broadcastStrides(a.shape, shape), broadcastStrides(b.shape, shape)]);
  if (levels.dims.length > 4) {
    throw new BackendError({
      fn: 'binary',
      expected: 'a broadcast that collapses to at most 4 index levels on the gpu.js backends',
      got: `${formatShape(a.shape)} with ${formatShape(b.shape)} (${levels.dims.length} levels)`,
    });
  }
  while (levels.dims.length < 4) {
    levels.dims.unshift(1);
    for (const s of levels.strides) s.unshift(0);
  }
  const [d0, d1, d2, d3] = levels.dims as [number, number, number, number];
  const [sa, sb] = levels.strides as [number[], number[]];
  checkQuotients('binary', 'broadcast dimensions', d0, d1, d2);
  const out = await backend.run(
    BINARY_BROADCAST,
    { a: A, b: B, op: code, d1, d2, d3, a0: sa[0] ?? 0, a1: sa[1] ?? 0, a2: sa[2] ?? 0, a3: sa[3] ?? 0, b0: sb[0] ?? 0, b1: sb[1] ?? 0, b2: sb[2] ?? 0, b3: sb[3] ?? 0 },
    [size],
  );
  return backend.wrap(out, shape);
}

function padShape(shape: Shape, rank: number): number[] {
  return [...new Array<number>(rank - shape.length).fill(1), ...shape];
}

/**
 * Merges adjacent output dimensions that every operand walks contiguously (or broadcasts
 * over together), and drops size-1 dimensions, so most broadcasts become 1–3 levels.
 */
export function collapseBroadcast(shape: Shape, strides: readonly (readonly number[])[]): { dims: number[]; strides: number[][] } {
  const dims: number[] = [];
  const out: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    const n = shape[d] as number;
    if (n === 1) continue;
    const last = dims.length - 1;
    const mergeable = last >= 0 && strides.every((s, k) => (out[k]?.[last] as number) === (s[d] as number) * n);
    if (mergeable) {
      dims[last] = (dims[last] as number) * n;
      strides.forEach((s, k) => {
        (out[k] as number[])[last] = s[d] as number;
      });
    } else {
      dims.push(n);
      strides.forEach((s, k) => (out[k] as number[]).push(s[d] as number));
    }
  }
  if (dims.length === 0) {
    dims.push(1);
    for (const s of out) s.push(0);
  }
  return { dims, strides: out };
}
