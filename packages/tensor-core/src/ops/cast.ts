import { type DType, isQuantized } from '../dtype.js';
import { ConfigError, ShapeError, formatShape } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { expectDType, lastDim, sameBackend } from './validate.js';

export interface CastOptions {
  /** For int8 / fp8e4m3: values per scale along the last axis (must divide it). Default: 128 if it divides, else the whole last axis. */
  readonly blockSize?: number;
  /** For fp8e4m3: `'ue8m0'` rounds scales up to powers of two, as DeepSeek-V3.2 deploys. */
  readonly scaleFormat?: 'exact' | 'ue8m0';
}

/** Converts storage dtype; float → int8/fp8e4m3 quantises per block, the reverse dequantises. */
export async function cast(x: Tensor, dtype: DType, options: CastOptions = {}): Promise<Tensor> {
  const fn = 'cast';
  const backend = sameBackend(fn, x);
  if (dtype === 'i32' || x.dtype === 'i32') {
    if (dtype !== x.dtype) throw new ConfigError({ fn, expected: 'float ↔ float casts (i32 stays i32)', got: `${x.dtype} → ${dtype}` });
  }
  const last = lastDim(x);
  let blockSize = options.blockSize ?? (last % 128 === 0 ? 128 : last);
  if (isQuantized(dtype)) {
    if (!Number.isInteger(blockSize) || blockSize <= 0 || last % blockSize !== 0) {
      throw new ShapeError({ fn, expected: `a block size dividing the last axis (${last} of ${formatShape(x.shape)})`, got: String(options.blockSize) });
    }
  } else {
    blockSize = 1;
  }
  return backend.kernels.Cast({ x }, { dtype, blockSize, scaleFormat: options.scaleFormat ?? 'exact' });
}

/** f32 → int8 / fp8e4m3 with per-block scales. */
export async function quantize(x: Tensor, dtype: 'int8' | 'fp8e4m3', options: CastOptions = {}): Promise<Tensor> {
  expectDType('quantize', 'x', x, 'f32', 'f16', 'bf16');
  return cast(x, dtype, options);
}

/** Any float storage → f32. */
export async function dequantize(x: Tensor): Promise<Tensor> {
  expectDType('dequantize', 'x', x, 'f32', 'f16', 'bf16', 'int8', 'fp8e4m3');
  return cast(x, 'f32');
}
