import { isQuantized } from '../dtype.js';
import { CapacityError, ConfigError, ShapeError, formatShape } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { normalizeAxis } from '../shape.js';
import { expectDType, expectMinRank, lastDim, sameBackend } from './validate.js';

/**
 * Gathers rows along axis `batchDims` (tf.gather with batch_dims): x [b..., N, r...] and
 * indices i32 [b..., k...] → f32 [b..., k..., r...]. Quantised or 16-bit rows are decoded in
 * the gather. Indices are trusted to lie in [0, N): check them with `validateIndices` when
 * they come from outside.
 */
export async function gather(x: Tensor, indices: Tensor, options: { batchDims?: number } = {}): Promise<Tensor> {
  const fn = 'gather';
  const backend = sameBackend(fn, x, indices);
  expectDType(fn, 'indices', indices, 'i32');
  const batchDims = options.batchDims ?? 0;
  if (!Number.isInteger(batchDims) || batchDims < 0 || batchDims >= x.rank || batchDims > indices.rank) {
    throw new ConfigError({ fn, expected: `batchDims in [0, ${Math.min(x.rank - 1, indices.rank)}]`, got: String(batchDims) });
  }
  for (let d = 0; d < batchDims; d++) {
    if (x.shape[d] !== indices.shape[d]) {
      throw new ShapeError({ fn, expected: `x and indices to agree on batch axis ${d}`, got: `x ${formatShape(x.shape)}, indices ${formatShape(indices.shape)}` });
    }
  }
  return backend.kernels.Gather({ x, indices }, { batchDims });
}

/** Throws CapacityError unless every index lies in [0, n). Reads the indices (async). */
export async function validateIndices(indices: Tensor, n: number, fn = 'validateIndices'): Promise<void> {
  const values = await indices.dataInt();
  for (let i = 0; i < values.length; i++) {
    const v = values[i] as number;
    if (v < 0 || v >= n) throw new CapacityError({ fn, expected: `indices in [0, ${n})`, got: `${v} at position ${i}` });
  }
}

/**
 * In place: dst[..., start:start+n, ...] = src along `axis` (src is converted to dst's storage
 * dtype; quantised dst needs whole last-axis blocks). Returns dst. Caches use this to append.
 */
export async function writeSlice(dst: Tensor, src: Tensor, axis: number, start: number): Promise<Tensor> {
  const fn = 'writeSlice';
  const backend = sameBackend(fn, dst, src);
  expectDType(fn, 'src', src, 'f32', 'f16', 'bf16', 'int8', 'fp8e4m3');
  const a = normalizeAxis(axis, dst.rank, fn);
  if (src.rank !== dst.rank || src.shape.some((d, i) => i !== a && d !== dst.shape[i])) {
    throw new ShapeError({ fn, expected: `src shaped like dst ${formatShape(dst.shape)} except on axis ${a}`, got: formatShape(src.shape) });
  }
  const n = src.shape[a] as number;
  if (!Number.isInteger(start) || start < 0 || start + n > (dst.shape[a] as number)) {
    throw new CapacityError({ fn, expected: `start + ${n} ≤ ${dst.shape[a]} on axis ${a}`, got: `start ${start}` });
  }
  if (isQuantized(dst.dtype) && a === dst.rank - 1) {
    const bs = dst.blockSize ?? 1;
    if (start % bs !== 0 || n % bs !== 0) {
      throw new ShapeError({ fn, expected: `writes along the last axis of ${dst.dtype} storage to cover whole ${bs}-value blocks`, got: `start ${start}, length ${n}` });
    }
  }
  return backend.kernels.WriteSlice({ dst, src }, { axis: a, start });
}

/** In place: rows `indices` (i32 [k]) of dst [N, r...] ← src [k, r...]. Returns dst. */
export async function scatterRows(dst: Tensor, src: Tensor, indices: Tensor): Promise<Tensor> {
  const fn = 'scatterRows';
  const backend = sameBackend(fn, dst, src, indices);
  expectDType(fn, 'indices', indices, 'i32');
  expectMinRank(fn, 'dst', dst, 1);
  if (indices.rank !== 1) throw new ShapeError({ fn, expected: 'indices of rank 1', got: formatShape(indices.shape) });
  if (src.rank !== dst.rank || src.shape[0] !== indices.shape[0] || src.shape.some((d, i) => i > 0 && d !== dst.shape[i])) {
    throw new ShapeError({ fn, expected: `src of shape [${indices.shape[0]}, ${dst.shape.slice(1).join(', ')}]`, got: formatShape(src.shape) });
  }
  return backend.kernels.ScatterRows({ dst, src, indices }, {});
}

/** The k largest values of the last axis with their i32 indices; ties keep the lower index first; NaN ranks as −∞ (tied with it by index). */
export async function topK(x: Tensor, k: number): Promise<{ values: Tensor; indices: Tensor }> {
  const fn = 'topK';
  const backend = sameBackend(fn, x);
  expectDType(fn, 'x', x, 'f32');
  expectMinRank(fn, 'x', x, 1);
  if (!Number.isInteger(k) || k < 1 || k > lastDim(x)) {
    throw new ConfigError({ fn, expected: `k in [1, ${lastDim(x)}] (the last axis of ${formatShape(x.shape)})`, got: String(k) });
  }
  return backend.kernels.TopK({ x }, { k });
}
