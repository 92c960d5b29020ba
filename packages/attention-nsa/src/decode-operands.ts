// What a fused decode step reads (decode-step.ts): the operands, and their names for the
// fused kernels' reasons to decline.

import type { Tensor } from '@attnkit/tensor-core';
import type { NSAWeights } from './weights.js';

/**
 * One decode step's operands: q [B, 1, Hq, D], k/v [B, T, Hkv, ·], x [B, 1, gateDim] and the
 * compressed blocks [B, ≥ nCmp, Hkv, ·] (a cache's, capacity rows included).
 */
export interface NSADecodeOperands {
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly kCmp: Tensor;
  readonly vCmp: Tensor;
  /** Complete blocks of the longest sequence. */
  readonly nCmp: number;
  readonly x: Tensor;
  readonly lengths: readonly number[];
}

/** Every tensor a fused step reads, with the name its decline reasons use (null: absent). */
export function namedOperands(ops: NSADecodeOperands, weights: NSAWeights): readonly (readonly [string, Tensor | null])[] {
  return [
    ['q', ops.q],
    ['k', ops.k],
    ['v', ops.v],
    ['compressed keys', ops.kCmp],
    ['compressed values', ops.vCmp],
    ['x', ops.x],
    ['gate weight', weights.gateWeight],
    ['gate bias', weights.gateBias],
  ];
}
