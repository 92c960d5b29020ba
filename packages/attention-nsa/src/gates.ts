// The gate (spec §4.7) and the gated sum of the three branches (paper eq. 5).

import { add, linear, mul, reshape, sigmoid, slice, type Tensor } from '@attnkit/tensor-core';

/**
 * g = sigmoid(x·W_gᵀ + b_g) for x [B, S, gateDim] → [B, S, Hq, 3], the last axis (cmp, slc, win).
 * The 3·Hq logits are interleaved per head ((head, branch), as [FLA], [XL] and [LR] lay them out).
 */
export async function nsaGates(x: Tensor, weight: Tensor, bias: Tensor | null, nHeads: number): Promise<Tensor> {
  using logits = await linear(x, weight, bias); // [B, S, 3·Hq]
  using gates = await sigmoid(logits);
  return reshape(gates, [...x.shape.slice(0, -1), nHeads, 3]); // [B, S, Hq, 3]: (head, branch)
}

/** out = g_cmp·o_cmp + g_slc·o_slc + g_win·o_win, gates [B, S, Hq, 3], branches [B, S, Hq, Dv]. */
export async function combineBranches(gates: Tensor, oCmp: Tensor, oSlc: Tensor, oWin: Tensor): Promise<Tensor> {
  const [B, S, Hq] = gates.shape as readonly [number, number, number];
  const gate = (branch: number): Promise<Tensor> => slice(gates, [0, 0, 0, branch], [B, S, Hq, 1]); // [B, S, Hq, 1]
  using gCmp = await gate(0);
  using gSlc = await gate(1);
  using gWin = await gate(2);
  using cmp = await mul(gCmp, oCmp);
  using slc = await mul(gSlc, oSlc);
  using win = await mul(gWin, oWin);
  using partial = await add(cmp, slc);
  return await add(partial, win);
}
