import type { ReduceOp } from '../kernels.js';

/** Reduces axis of size N between `outer` and `inner` blocks: x viewed as [outer, N, inner]. */
export function reduceApply(x: Float32Array, outer: number, N: number, inner: number, op: ReduceOp, out: Float32Array): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * N * inner + i;
      let acc = op === 'max' ? -Infinity : op === 'min' ? Infinity : 0;
      for (let n = 0; n < N; n++) {
        const v = x[base + n * inner] as number;
        if (op === 'max') acc = v > acc || Number.isNaN(v) ? v : acc;
        else if (op === 'min') acc = v < acc || Number.isNaN(v) ? v : acc;
        else acc += v;
      }
      out[o * inner + i] = op === 'mean' ? acc / N : acc;
    }
  }
}
