import { isQuantized } from '../dtype.js';
import { ConfigError, DTypeError, ShapeError, formatShape } from '../errors.js';
import { type Shape, assertValidShape, normalizeAxis, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { sameBackend } from './validate.js';

/** A view with another shape of the same size; shares storage (dispose each handle). One −1 is inferred. */
export function reshape(x: Tensor, shape: Shape): Tensor {
  const fn = 'reshape';
  const backend = sameBackend(fn, x);
  const inferred = shape.filter((d) => d === -1).length;
  if (inferred > 1) throw new ShapeError({ fn, expected: 'at most one -1 dimension', got: formatShape(shape) });
  let target = [...shape];
  if (inferred === 1) {
    const known = sizeOf(shape.filter((d) => d !== -1));
    if (known === 0 || x.size % known !== 0) throw new ShapeError({ fn, expected: `a shape of ${x.size} elements`, got: formatShape(shape) });
    target = shape.map((d) => (d === -1 ? x.size / known : d));
  }
  assertValidShape(target, fn);
  if (sizeOf(target) !== x.size) {
    throw new ShapeError({ fn, expected: `a shape of ${x.size} elements (from ${formatShape(x.shape)})`, got: formatShape(shape) });
  }
  if (isQuantized(x.dtype) && target[target.length - 1] !== x.shape[x.rank - 1]) {
    throw new ShapeError({ fn, expected: `${x.dtype} storage to keep its last axis (${x.shape[x.rank - 1]}), where the block scales run`, got: formatShape(target) });
  }
  return backend.share(x, target);
}

export async function concat(xs: readonly Tensor[], axis: number): Promise<Tensor> {
  const fn = 'concat';
  const first = xs[0];
  if (!first) throw new ShapeError({ fn, expected: 'at least one tensor', got: 'none' });
  const backend = sameBackend(fn, ...xs);
  const a = normalizeAxis(axis, first.rank, fn);
  for (const t of xs) {
    if (t.dtype !== first.dtype || (t.dtype !== 'f32' && t.dtype !== 'i32')) {
      throw new DTypeError({ fn, expected: 'f32 or i32 tensors of one dtype', got: xs.map((x) => x.dtype).join(', ') });
    }
    if (t.rank !== first.rank || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new ShapeError({ fn, expected: `shapes equal except on axis ${a}`, got: xs.map((x) => formatShape(x.shape)).join(', ') });
    }
  }
  return backend.kernels.Concat({ xs }, { axis: a });
}

/** The box [begin, begin+size); a size of −1 runs to the end of that axis. */
export async function slice(x: Tensor, begin: readonly number[], size?: readonly number[]): Promise<Tensor> {
  const fn = 'slice';
  const backend = sameBackend(fn, x);
  if (begin.length !== x.rank || (size && size.length !== x.rank)) {
    throw new ShapeError({ fn, expected: `begin and size of length ${x.rank}`, got: `${begin.length} and ${size?.length ?? '-'}` });
  }
  const resolved = x.shape.map((d, i) => {
    const s = size?.[i] ?? -1;
    return s === -1 ? d - (begin[i] as number) : s;
  });
  for (let i = 0; i < x.rank; i++) {
    const b = begin[i] as number;
    const s = resolved[i] as number;
    if (!Number.isInteger(b) || !Number.isInteger(s) || b < 0 || s < 0 || b + s > (x.shape[i] as number)) {
      throw new ShapeError({ fn, expected: `a box inside ${formatShape(x.shape)}`, got: `begin ${formatShape(begin)}, size ${formatShape(resolved)}` });
    }
  }
  if (isQuantized(x.dtype)) {
    const last = x.rank - 1;
    const bs = x.blockSize ?? 1;
    if ((begin[last] as number) % bs !== 0 || (resolved[last] as number) % bs !== 0) {
      throw new ShapeError({ fn, expected: `slices of ${x.dtype} storage to keep whole ${bs}-value blocks`, got: `begin ${begin[last]}, size ${resolved[last]}` });
    }
  }
  return backend.kernels.Slice({ x }, { begin, size: resolved });
}

/** Permutes axes: out.shape[i] = x.shape[perm[i]]. */
export async function transpose(x: Tensor, perm: readonly number[]): Promise<Tensor> {
  const fn = 'transpose';
  const backend = sameBackend(fn, x);
  const sorted = [...perm].sort((p, q) => p - q);
  if (perm.length !== x.rank || sorted.some((p, i) => p !== i)) {
    throw new ConfigError({ fn, expected: `a permutation of 0..${x.rank - 1}`, got: formatShape(perm) });
  }
  if (x.dtype !== 'f32' && x.dtype !== 'i32' && x.dtype !== 'f16' && x.dtype !== 'bf16') {
    throw new DTypeError({ fn, expected: 'an f32, f16, bf16 or i32 tensor', got: x.dtype });
  }
  return backend.kernels.Transpose({ x }, { perm });
}
