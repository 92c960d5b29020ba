// Reductions over one axis: x viewed as [outer, N, inner]; one thread per output element.

import type { ReduceOp } from '../../kernels.js';
import { sizeOf } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import type { GpujsBackend } from '../backend.js';
import type { KernelSpec } from '../runtime.js';
import { type Arr, type Gpu, INDEX_HELPERS, checkQuotients, idiv, isNan } from './common.js';
import { FILL } from './elementwise.js';

const REDUCE_CODE: Readonly<Record<ReduceOp, number>> = { sum: 0, mean: 1, max: 2, min: 3 };

// out[o, i] for flat output index e = o·inner + i; max/min propagate NaN like the reference.
function reduceKernel(this: Gpu, x: Arr, N: number, inner: number, op: number): number {
  let acc = x[idiv(this.thread.x, inner) * N * inner + this.thread.x - idiv(this.thread.x, inner) * inner];
  if (op < 2) acc = 0;
  for (let n = 0; n < N; n++) {
    const v = x[(idiv(this.thread.x, inner) * N + n) * inner + this.thread.x - idiv(this.thread.x, inner) * inner];
    if (op < 2) {
      acc += v;
    } else if (op === 2) {
      acc = v > acc || isNan(v) === 1 ? v : acc;
    } else {
      acc = v < acc || isNan(v) === 1 ? v : acc;
    }
  }
  if (op === 1) return acc / N;
  return acc;
}

const REDUCE: KernelSpec = {
  key: 'reduce',
  fn: reduceKernel,
  params: { x: 'array', N: 'int', inner: 'int', op: 'int' },
  rank: 1,
  functions: [isNan, ...INDEX_HELPERS],
};

export async function reduceTensor(backend: GpujsBackend, x: Tensor, op: ReduceOp, axis: number, keepDims: boolean): Promise<Tensor> {
  const outer = sizeOf(x.shape.slice(0, axis));
  const N = x.shape[axis] as number;
  const inner = sizeOf(x.shape.slice(axis + 1));
  const shape = keepDims ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis);
  const X = backend.arrayOf(x, op);
  if (outer * inner === 0) return backend.zeroSized(shape);
  if (N === 0) {
    // the reference's empty reductions: sum 0, mean NaN (0/0), max −∞, min +∞
    const value = op === 'sum' ? 0 : op === 'mean' ? NaN : op === 'max' ? -Infinity : Infinity;
    return backend.wrap(await backend.run(FILL, { value }, [outer * inner]), shape);
  }
  checkQuotients(op, 'outer rows', outer);
  const out = await backend.run(REDUCE, { x: X, N, inner, op: REDUCE_CODE[op] }, [outer * inner]);
  return backend.wrap(out, shape);
}
