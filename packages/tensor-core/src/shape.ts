import { ShapeError, formatShape } from './errors.js';

export type Shape = readonly number[];

export function sizeOf(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides, in elements. */
export function stridesOf(shape: Shape): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i] as number;
  }
  return strides;
}

export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Validates that every dimension is a non-negative integer. */
export function assertValidShape(shape: Shape, fn: string): void {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError({ fn, expected: 'a shape of non-negative integers', got: formatShape(shape) });
    }
  }
}

/** Normalises a possibly negative axis against a rank. */
export function normalizeAxis(axis: number, rank: number, fn: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new ShapeError({ fn, expected: `an axis in [-${rank}, ${rank - 1}]`, got: String(axis) });
  }
  return a;
}

/** NumPy broadcasting of two shapes; throws ShapeError naming `fn` when they do not broadcast. */
export function broadcastShapes(a: Shape, b: Shape, fn: string): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new ShapeError({ fn, expected: 'shapes that broadcast', got: `${formatShape(a)} and ${formatShape(b)}` });
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * The offset, through an operand's broadcast `strides`, of the element at flat row-major index
 * `index` of the output whose row-major strides are `outStrides` (`stridesOf(outShape)`).
 */
export function broadcastOffset(index: number, outStrides: readonly number[], strides: readonly number[]): number {
  let offset = 0;
  let rem = index;
  for (let d = 0; d < outStrides.length; d++) {
    const coord = Math.floor(rem / (outStrides[d] as number));
    rem -= coord * (outStrides[d] as number);
    offset += coord * (strides[d] as number);
  }
  return offset;
}

/** Element strides of `shape` broadcast to `outShape` (0 where the input dimension is 1). */
export function broadcastStrides(shape: Shape, outShape: Shape): number[] {
  const strides = stridesOf(shape);
  const out = new Array<number>(outShape.length).fill(0);
  const offset = outShape.length - shape.length;
  for (let i = 0; i < shape.length; i++) {
    out[offset + i] = shape[i] === 1 ? 0 : (strides[i] as number);
  }
  return out;
}
