// Which keys each query sees, as an additive mask (0 visible, −∞ hidden) for a chunk of queries:
// the structural part of the composed fallback's softmax mask. Causality is bottom-right, the
// window keeps `window` keys up to the query plus the sinks, sparse selections are sets.

import type { AttentionProblem } from '../problem.js';

/**
 * The mask of queries i0..i0+Sc−1 as f32 [B, Hm, 1, Sc, T] with Hm = Hkv when the selection
 * differs per kv head, else 1; or null when every query sees every key (no mask needed).
 */
export function visibilityMask(p: AttentionProblem, i0: number, Sc: number): { data: Float32Array; heads: number } | null {
  const { B, S, T, Hkv, causal, window, sinkTokens, lengths, selection } = p;
  if (selection.kind === 'dense' && !causal && lengths.every((len) => len === T)) return null;
  const heads = selection.kind !== 'dense' && selection.perHead ? Hkv : 1;
  const data = new Float32Array(B * heads * Sc * T).fill(-Infinity);
  for (let b = 0; b < B; b++) {
    const len = lengths[b] ?? T;
    for (let c = 0; c < Sc; c++) {
      const i = i0 + c;
      const end = causal ? len - S + i + 1 : len; // keys [0, end) pass causality and the length
      for (let g = 0; g < heads; g++) {
        const row = ((b * heads + g) * Sc + c) * T;
        if (selection.kind === 'dense') {
          const lo = causal && window !== null ? Math.max(0, end - window) : 0;
          data.fill(0, row + lo, row + end);
          data.fill(0, row, row + Math.min(sinkTokens, lo));
          continue;
        }
        const base = ((b * S + i) * (selection.perHead ? Hkv : 1) + (selection.perHead ? g : 0)) * selection.width;
        for (let j = 0; j < selection.width; j++) {
          const x = selection.values[base + j] as number;
          if (x < 0) continue;
          if (selection.kind === 'indices') {
            if (x < end) data[row + x] = 0;
          } else {
            const from = x * selection.blockSize;
            const to = Math.min(from + selection.blockSize, end);
            if (to > from) data.fill(0, row + from, row + to);
          }
        }
      }
    }
  }
  return { data, heads };
}
