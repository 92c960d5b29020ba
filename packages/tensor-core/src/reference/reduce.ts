import type { ReduceOp } from '../kernels.js';

/**
 * Reduces axis of size N between `outer` and `inner` blocks: x viewed as [outer, N, inner].
 * Each output folds its N values in order n = 0..N−1; the loops run over n outside and the
 * `inner` outputs inside, so x is read in memory order (reducing a middle axis walked it with
 * a stride of `inner` per value: ~4× slower at [16, 4095] over the 16).
 */
export function reduceApply(x: Float32Array, outer: number, N: number, inner: number, op: ReduceOp, out: Float32Array): void {
  const acc = new Float64Array(inner);
  for (let o = 0; o < outer; o++) {
    acc.fill(op === 'max' ? -Infinity : op === 'min' ? Infinity : 0);
    for (let n = 0; n < N; n++) {
      const base = (o * N + n) * inner;
      if (op === 'max') {
        for (let i = 0; i < inner; i++) {
          const v = x[base + i] as number;
          if (v > (acc[i] as number) || Number.isNaN(v)) acc[i] = v;
        }
      } else if (op === 'min') {
        for (let i = 0; i < inner; i++) {
          const v = x[base + i] as number;
          if (v < (acc[i] as number) || Number.isNaN(v)) acc[i] = v;
        }
      } else for (let i = 0; i < inner; i++) acc[i] = (acc[i] as number) + (x[base + i] as number);
    }
    for (let i = 0; i < inner; i++) out[o * inner + i] = op === 'mean' ? (acc[i] as number) / N : (acc[i] as number);
  }
}
