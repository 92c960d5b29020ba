import type { BinaryOp, UnaryOp } from '../kernels.js';
import { type Shape, broadcastStrides, sizeOf } from '../shape.js';

/** erf with |error| < 1.2e-7 (Numerical Recipes' erfc Chebyshev fit), enough for f32 GELU. */
export function erf(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? 1 - r : r - 1;
}

export function unaryFn(op: UnaryOp): (x: number) => number {
  switch (op) {
    case 'silu':
      return (x) => x / (1 + Math.exp(-x));
    case 'relu':
      return (x) => (x > 0 ? x : 0);
    case 'sigmoid':
      return (x) => 1 / (1 + Math.exp(-x));
    case 'gelu':
      return (x) => 0.5 * x * (1 + erf(x / Math.SQRT2));
    case 'gelu_tanh':
      return (x) => 0.5 * x * (1 + Math.tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    case 'exp':
      return Math.exp;
    case 'neg':
      return (x) => -x;
    case 'abs':
      return Math.abs;
    case 'sqrt':
      return Math.sqrt;
    case 'rsqrt':
      return (x) => 1 / Math.sqrt(x);
    case 'square':
      return (x) => x * x;
    case 'tanh':
      return Math.tanh;
  }
}

export function unaryApply(x: Float32Array, op: UnaryOp, out: Float32Array): void {
  const f = unaryFn(op);
  for (let i = 0; i < x.length; i++) out[i] = f(x[i] as number);
}

export function binaryFn(op: BinaryOp): (a: number, b: number) => number {
  switch (op) {
    case 'add':
      return (a, b) => a + b;
    case 'sub':
      return (a, b) => a - b;
    case 'mul':
      return (a, b) => a * b;
    case 'div':
      return (a, b) => a / b;
    case 'max':
      return (a, b) => (a > b || Number.isNaN(a) ? a : b);
    case 'min':
      return (a, b) => (a < b || Number.isNaN(a) ? a : b);
  }
}

/** out = a ∘ b with NumPy broadcasting to outShape. */
export function binaryApply(a: Float32Array, aShape: Shape, b: Float32Array, bShape: Shape, outShape: Shape, op: BinaryOp, out: Float32Array): void {
  const f = binaryFn(op);
  const n = sizeOf(outShape);
  if (a.length === n && b.length === n) {
    for (let i = 0; i < n; i++) out[i] = f(a[i] as number, b[i] as number);
    return;
  }
  if (b.length === 1) {
    const bv = b[0] as number;
    for (let i = 0; i < n; i++) out[i] = f(a[i % a.length] as number, bv);
    return;
  }
  const rank = outShape.length;
  const as = broadcastStrides(aShape, outShape);
  const bs = broadcastStrides(bShape, outShape);
  const idx = new Array<number>(rank).fill(0);
  let ai = 0;
  let bi = 0;
  for (let i = 0; i < n; i++) {
    out[i] = f(a[ai] as number, b[bi] as number);
    // odometer increment over the output index, carrying offsets in a and b
    for (let d = rank - 1; d >= 0; d--) {
      const next = (idx[d] as number) + 1;
      if (next < (outShape[d] as number)) {
        idx[d] = next;
        ai += as[d] as number;
        bi += bs[d] as number;
        break;
      }
      idx[d] = 0;
      ai -= (next - 1) * (as[d] as number);
      bi -= (next - 1) * (bs[d] as number);
    }
  }
}
