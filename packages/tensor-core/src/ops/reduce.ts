import type { ReduceOp } from '../kernels.js';
import { normalizeAxis } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { expectDType, expectMinRank, sameBackend } from './validate.js';

async function reduce(fn: string, x: Tensor, op: ReduceOp, axis: number, keepDims: boolean): Promise<Tensor> {
  const backend = sameBackend(fn, x);
  expectDType(fn, 'x', x, 'f32');
  expectMinRank(fn, 'x', x, 1);
  const a = normalizeAxis(axis, x.rank, fn);
  return backend.kernels.Reduce({ x }, { op, axis: a, keepDims });
}

export const sum = (x: Tensor, axis = -1, keepDims = false): Promise<Tensor> => reduce('sum', x, 'sum', axis, keepDims);
export const mean = (x: Tensor, axis = -1, keepDims = false): Promise<Tensor> => reduce('mean', x, 'mean', axis, keepDims);
export const max = (x: Tensor, axis = -1, keepDims = false): Promise<Tensor> => reduce('max', x, 'max', axis, keepDims);
export const min = (x: Tensor, axis = -1, keepDims = false): Promise<Tensor> => reduce('min', x, 'min', axis, keepDims);
