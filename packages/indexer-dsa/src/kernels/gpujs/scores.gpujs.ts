// The gpu.js kernel of the fused indexer: one thread per (query row, key) computes
//   I[p, t] = Σ_j w_j · ReLU(q_j · k_t)    (t ≤ p),   −3e38 otherwise (below every real score,
//                                            so top-k never prefers a hidden key)
// ReLU(NaN) is 0 (`dot > 0` fails), as in the CPU kernel and the reference.
// straight from q [rows, H_I, D_I], w [rows, H_I] and the keys [B, T, D_I], with no
// [rows·H_I, T] logits in between. Rows r = (b, c) are the Sc queries i0 … i0+Sc−1 of each
// sequence.
//
// Rules (gpu.js compiles this from its source text): a plain function, integers only inline
// (locals are f32; `| 0` casts back), loop counters from a literal 0, quotients through idiv.

import type { Arr, Gpu } from '@attnkit/tensor-core';

/** ⌊a / b⌋ exactly for 0 ≤ a < 2^31, quotients < 2^22. */
export function idiv(a: number, b: number): number {
  const q = Math.floor((a + 0.5) / b);
  return (q | 0) + ((a - (q | 0) * b) >> 31) - ((b - 1 - (a - (q | 0) * b)) >> 31);
}

// Thread (x = key t, y = row r = b·Sc + c).
export function indexerScoresKernel(this: Gpu, q: Arr, w: Arr, k: Arr, lens: Arr, S: number, HI: number, DI: number, T: number, i0: number, Sc: number): number {
  const b = idiv(this.thread.y, Sc);
  const c = this.thread.y - idiv(this.thread.y, Sc) * Sc;
  if (this.thread.x > lens[b | 0] - S + i0 + c) return -3.0e38;
  let score = 0;
  for (let j = 0; j < HI; j++) {
    let dot = 0;
    for (let d = 0; d < DI; d++) {
      dot += q[((this.thread.y | 0) * HI + j) * DI + d] * k[((b | 0) * T + (this.thread.x | 0)) * DI + d];
    }
    if (dot > 0) score += w[(this.thread.y | 0) * HI + j] * dot;
  }
  // A NaN (or −∞) score ranks as −∞ (the indexer's rule): at −3e38 it ties with the hidden keys,
  // which all come later (t > p), so top-k takes it after every number and before any hidden key.
  if (scoreIsNan(score) === 1) return -3.0e38;
  if (score < -3.0e38) return -3.0e38;
  return score;
}

/** 1 for NaN (every comparison false), else 0; never `v !== v`, which WGSL may fold to false. */
export function scoreIsNan(v: number): number {
  if (!(v >= -3.4e38) && !(v < -3.4e38)) return 1;
  return 0;
}
