import { reshape, transpose, type Tensor } from '@attnkit/tensor-core';

/**
 * transpose(x, perm), as a free reshape when the permutation only moves axes of size 1
 * (one kv head, one query, batch 1 — decode's usual shapes), since the memory order is
 * then unchanged.
 */
export async function permute(x: Tensor, perm: readonly number[]): Promise<Tensor> {
  const moved = perm.filter((axis) => (x.shape[axis] as number) !== 1);
  const inOrder = moved.every((axis, i) => i === 0 || axis > (moved[i - 1] as number));
  if (inOrder) return reshape(x, perm.map((axis) => x.shape[axis] as number));
  return transpose(x, perm);
}
