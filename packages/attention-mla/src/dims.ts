import { ShapeError, type Tensor, formatShape } from '@attnkit/tensor-core';

/** The size of `axis` of t (negative counts from the end); throws if t has no such axis. */
export function dim(t: Tensor, axis: number): number {
  const d = t.shape[axis < 0 ? t.rank + axis : axis];
  if (d === undefined) throw new ShapeError({ fn: 'attention-mla', expected: `a tensor with an axis ${axis}`, got: formatShape(t.shape) });
  return d;
}
