import { type Shape, sizeOf, stridesOf } from '../shape.js';

/** Copies the box [begin, begin+size) of x (shape xShape) into out (shape size), row-major. */
export function sliceApply<T extends Float32Array | Int32Array | Uint16Array | Uint8Array | Int8Array>(
  x: T,
  xShape: Shape,
  begin: readonly number[],
  size: readonly number[],
  out: T,
): void {
  const rank = xShape.length;
  if (rank === 0) {
    out[0] = x[0] as number;
    return;
  }
  const xs = stridesOf(xShape);
  const inner = size[rank - 1] as number;
  const outer = sizeOf(size) / Math.max(inner, 1);
  if (inner === 0) return;
  const idx = new Array<number>(rank - 1).fill(0);
  for (let o = 0; o < outer; o++) {
    let src = (begin[rank - 1] as number) * (xs[rank - 1] as number);
    for (let d = 0; d < rank - 1; d++) src += ((begin[d] as number) + (idx[d] as number)) * (xs[d] as number);
    out.set(x.subarray(src, src + inner), o * inner);
    for (let d = rank - 2; d >= 0; d--) {
      const next = (idx[d] as number) + 1;
      if (next < (size[d] as number)) {
        idx[d] = next;
        break;
      }
      idx[d] = 0;
    }
  }
}

/** out = x with axes permuted: out.shape[i] = xShape[perm[i]]. */
export function transposeApply<T extends Float32Array | Int32Array | Uint16Array>(x: T, xShape: Shape, perm: readonly number[], out: T): void {
  const rank = xShape.length;
  const outShape = perm.map((p) => xShape[p] as number);
  const xs = stridesOf(xShape);
  const permStrides = perm.map((p) => xs[p] as number);
  const n = sizeOf(outShape);
  const idx = new Array<number>(rank).fill(0);
  let src = 0;
  for (let i = 0; i < n; i++) {
    out[i] = x[src] as number;
    for (let d = rank - 1; d >= 0; d--) {
      const next = (idx[d] as number) + 1;
      if (next < (outShape[d] as number)) {
        idx[d] = next;
        src += permStrides[d] as number;
        break;
      }
      idx[d] = 0;
      src -= (next - 1) * (permStrides[d] as number);
    }
  }
}

/** Concatenation along `axis` of row-major arrays with equal shapes except on `axis`. */
export function concatApply<T extends Float32Array | Int32Array | Uint16Array>(
  xs: readonly { data: T; shape: Shape }[],
  axis: number,
  out: T,
): void {
  const first = xs[0];
  if (!first) return;
  const outer = sizeOf(first.shape.slice(0, axis));
  let outAxis = 0;
  for (const x of xs) outAxis += x.shape[axis] as number;
  const innerOf = (shape: Shape): number => sizeOf(shape.slice(axis + 1));
  const inner = innerOf(first.shape);
  for (let o = 0; o < outer; o++) {
    let at = o * outAxis * inner;
    for (const x of xs) {
      const chunk = (x.shape[axis] as number) * inner;
      out.set(x.data.subarray(o * chunk, (o + 1) * chunk), at);
      at += chunk;
    }
  }
}
