import type { Backend } from '../backend.js';
import { type DType, encodeBf16, encodeF16 } from '../dtype.js';
import { BackendError, DTypeError, ShapeError, formatShape } from '../errors.js';
import { type Shape, assertValidShape, sizeOf } from '../shape.js';
import type { Tensor } from '../tensor.js';

export interface TensorOptions {
  /**
   * Storage dtype. Float input is rounded to f16/bf16 (nearest even); int8 / fp8e4m3 are made
   * with `quantize` instead.
   */
  readonly dtype?: 'f32' | 'f16' | 'bf16' | 'i32';
}

/** Copies host numbers into a new tensor on `backend`. */
export function tensor(
  backend: Backend,
  values: ArrayLike<number>,
  shape: Shape,
  options: TensorOptions = {},
): Tensor {
  const fn = 'tensor';
  if (backend.isDisposed) throw new BackendError({ fn, expected: 'a live backend', got: `${backend.info.name} after dispose()` });
  assertValidShape(shape, fn);
  if (values.length !== sizeOf(shape)) {
    throw new ShapeError({ fn, expected: `${sizeOf(shape)} values for shape ${formatShape(shape)}`, got: `${values.length} values` });
  }
  const dtype = options.dtype ?? (values instanceof Int32Array ? 'i32' : 'f32');
  switch (dtype) {
    case 'f32':
      return backend.upload(values instanceof Float32Array ? values : Float32Array.from(values), shape, 'f32');
    case 'i32': {
      const ints = values instanceof Int32Array ? values : Int32Array.from(values);
      for (let i = 0; i < ints.length; i++) {
        if (ints[i] !== values[i]) throw new DTypeError({ fn, expected: 'integers for an i32 tensor', got: `${values[i]} at index ${i}` });
      }
      return backend.upload(ints, shape, 'i32');
    }
    case 'f16':
      return backend.upload(encodeF16(values), shape, 'f16');
    case 'bf16':
      return backend.upload(encodeBf16(values), shape, 'bf16');
  }
}

/** A zero-filled tensor. */
export function zeros(backend: Backend, shape: Shape, dtype: DType = 'f32', blockSize?: number): Tensor {
  if (backend.isDisposed) throw new BackendError({ fn: 'zeros', expected: 'a live backend', got: `${backend.info.name} after dispose()` });
  assertValidShape(shape, 'zeros');
  return backend.zeros(shape, dtype, blockSize);
}

/** A 1-D i32 tensor [start, start+1, …, end−1]. */
export function arange(backend: Backend, start: number, end: number): Tensor {
  const n = Math.max(0, end - start);
  const values = new Int32Array(n);
  for (let i = 0; i < n; i++) values[i] = start + i;
  return backend.upload(values, [n], 'i32');
}
