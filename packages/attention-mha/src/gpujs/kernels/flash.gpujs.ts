// gpu.js kernels of the fused attention core. gpu.js computes one value per thread, so one key
// chunk of the online softmax is five launches over rows r = (b, c, h) of a query chunk:
//   keys       [R, Tc]  logical key of each (row, slot) or −1: masks, windows, sparse lists
//   scores     [R, Tc]  scale·q·k + bias, or NEG for a hidden slot
//   stats      [R, 2]   the running max m and sum l after this chunk
//   probs      [R, Tc]  exp(s − m_new): one exp per score
//   accumulate [R, Dv]  acc·exp(m_old − m_new) + P·V
// and, after the last chunk, `finish` (out = acc / l) and `lse` (m + ln l).
//
// Rules (gpu.js compiles these from their source text): plain functions, integers only inline
// (locals are f32; `| 0` casts back), loop counters from a literal 0, quotients through idiv,
// and no array read inside another array's index (read it into a local first; GLSL needs it).
//
// NaN (see "NaN and infinity" in the errors guide): a hidden slot is tested as `s < −1e38` or
// `key < 0`, never as `s > −1e38`, because every comparison with NaN is false — a NaN score
// then counts as visible and its exp (NaN) reaches l and the accumulator. Max may drop a NaN
// (WGSL's max does on some drivers) without harm: exp(NaN − m) is NaN either way. Every visible
// key's value enters the sum, at weight 0 too (0·NaN is NaN); a hidden one never does.

import type { Arr, Gpu } from '@attnkit/tensor-core';

/** "Hidden" score: far below any real score, and exp(NEG − m) = 0 for every finite m. */
export const NEG = -3.0e38;

/** ⌊a / b⌋ exactly for 0 ≤ a < 2^31, quotients < 2^22 (the host checks the sizes). */
export function qdiv(a: number, b: number): number {
  const q = Math.floor((a + 0.5) / b);
  return (q | 0) + ((a - (q | 0) * b) >> 31) - ((b - 1 - (a - (q | 0) * b)) >> 31);
}

// Thread (x = slot j, y = row r): the logical key the slot names for this row, or −1.
export function flashKeysKernel(
  this: Gpu,
  sel: Arr,
  lens: Arr,
  S: number,
  Hq: number,
  G: number,
  Sc: number,
  i0: number,
  t0: number,
  causal: number,
  win: number,
  sinks: number,
  selKind: number,
  selW: number,
  selHeads: number,
  selG: number,
  blockSize: number,
): number {
  const b = qdiv(this.thread.y, Sc * Hq);
  const c = qdiv(this.thread.y, Hq) - b * Sc;
  const g = qdiv(this.thread.y - qdiv(this.thread.y, Hq) * Hq, G);
  const len = lens[b | 0];
  const pos = len - S + i0 + c;
  let t = t0 + this.thread.x;
  if (selKind === 1) {
    if (t0 + this.thread.x >= selW) return -1;
    t = sel[(((b | 0) * S + i0 + (c | 0)) * selHeads + (g | 0) * selG) * selW + t0 + this.thread.x];
  }
  if (selKind === 2) {
    if (qdiv(t0 + this.thread.x, blockSize) >= selW) return -1;
    const blk = sel[(((b | 0) * S + i0 + (c | 0)) * selHeads + (g | 0) * selG) * selW + qdiv(t0 + this.thread.x, blockSize)];
    if (blk < 0) return -1;
    t = blk * blockSize + t0 + this.thread.x - qdiv(t0 + this.thread.x, blockSize) * blockSize;
  }
  if (t < 0 || t >= len) return -1;
  if (causal === 1 && t > pos) return -1;
  if (win > 0 && t <= pos - win && t >= sinks) return -1;
  return t;
}

// Thread (x = slot j, y = row r): scale·q_r·k_t (+ bias), or NEG when the slot is hidden.
export function flashScoresKernel(
  this: Gpu,
  q: Arr,
  k: Arr,
  keys: Arr,
  rowMap: Arr,
  bias: Arr,
  S: number,
  Hq: number,
  Hkv: number,
  G: number,
  D: number,
  T: number,
  Sc: number,
  i0: number,
  Tc: number,
  hasRowMap: number,
  hasBias: number,
  bB: number,
  bH: number,
  bS: number,
  bT: number,
  scale: number,
): number {
  const t = keys[this.thread.y * Tc + this.thread.x];
  if (t < 0) return -3.0e38;
  const b = qdiv(this.thread.y, Sc * Hq);
  const c = qdiv(this.thread.y, Hq) - b * Sc;
  const h = this.thread.y - qdiv(this.thread.y, Hq) * Hq;
  let row = (b | 0) * T + (t | 0);
  if (hasRowMap === 1) row = rowMap[(b | 0) * T + (t | 0)];
  let dot = 0;
  for (let d = 0; d < D; d++) {
    dot += q[(((b | 0) * S + i0 + (c | 0)) * Hq + (h | 0)) * D + d] * k[((row | 0) * Hkv + qdiv(h | 0, G)) * D + d];
  }
  let s = scale * dot;
  if (hasBias === 1) s += bias[(b | 0) * bB + (h | 0) * bH + (i0 + (c | 0)) * bS + (t | 0) * bT];
  if (s < -1.0e38) return -3.0e38; // a −∞ bias hides the key
  return s;
}

// Thread (x ∈ {0, 1}, y = row r) of the softmax state [R, 2]: x = 0 is the new running max
// m_new = max(m_old, max_j s_j), x = 1 the new running sum l_old·exp(m_old − m_new) + Σ_j exp(s_j − m_new).
export function flashStatsKernel(this: Gpu, ml: Arr, scores: Arr, Tc: number): number {
  const mOld = ml[this.thread.y * 2];
  let mx = -3.0e38;
  for (let j = 0; j < Tc; j++) mx = Math.max(mx, scores[this.thread.y * Tc + j]);
  const mNew = Math.max(mOld, mx);
  if (this.thread.x === 0) return mNew;
  let corr = Math.exp(mOld - mNew);
  if (mOld < -1.0e38) corr = 0;
  let sum = 0;
  for (let i = 0; i < Tc; i++) {
    let e = Math.exp(scores[this.thread.y * Tc + i] - mNew);
    if (scores[this.thread.y * Tc + i] < -1.0e38) e = 0;
    sum += e;
  }
  return ml[this.thread.y * 2 + 1] * corr + sum;
}

// Thread (x = slot j, y = row r): p = exp(s − m_new), 0 for a hidden slot.
export function flashProbsKernel(this: Gpu, scores: Arr, ml: Arr, Tc: number): number {
  if (scores[this.thread.y * Tc + this.thread.x] < -1.0e38) return 0;
  return Math.exp(scores[this.thread.y * Tc + this.thread.x] - ml[this.thread.y * 2]);
}

// Thread (x = d, y = row r): acc·exp(m_old − m_new) + Σ_j p_j·v[key_j, d].
export function flashAccumulateKernel(
  this: Gpu,
  acc: Arr,
  mlOld: Arr,
  mlNew: Arr,
  probs: Arr,
  keys: Arr,
  v: Arr,
  rowMap: Arr,
  Hq: number,
  Hkv: number,
  G: number,
  Dv: number,
  vW: number,
  T: number,
  Sc: number,
  Tc: number,
  hasRowMap: number,
): number {
  let corr = Math.exp(mlOld[this.thread.y * 2] - mlNew[this.thread.y * 2]);
  if (mlOld[this.thread.y * 2] < -1.0e38) corr = 0;
  const b = qdiv(this.thread.y, Sc * Hq);
  const g = qdiv(this.thread.y - qdiv(this.thread.y, Hq) * Hq, G);
  let a = acc[this.thread.y * Dv + this.thread.x] * corr;
  for (let n = 0; n < Tc; n++) {
    // the key in a local: an array read inside another array's index breaks gpu.js' GLSL
    // (it hoists the index into a float temporary and assigns it an int)
    const key = keys[this.thread.y * Tc + n];
    if (key >= 0) {
      let row = (b | 0) * T + (key | 0);
      if (hasRowMap === 1) row = rowMap[(b | 0) * T + (key | 0)];
      a += probs[this.thread.y * Tc + n] * v[((row | 0) * Hkv + (g | 0)) * vW + this.thread.x];
    }
  }
  return a;
}

// Thread (x = d, y = row r): out = acc / l, or 0 for a row that saw no key (l = 0; a NaN l gives NaN).
export function flashFinishKernel(this: Gpu, acc: Arr, ml: Arr, Dv: number): number {
  if (ml[this.thread.y * 2 + 1] === 0) return 0;
  return acc[this.thread.y * Dv + this.thread.x] / ml[this.thread.y * 2 + 1];
}

// Thread r: lse = m + ln l, or −∞ for a row that saw no key (l = 0). GL's log(0) is finite and
// gpu.js writes `Infinity` as the largest float there, so −∞ comes from an overflow at run time:
// min(m, NEG)·2 is below −f32max on every mode. A NaN l is not 0: the lse stays NaN.
export function flashLseKernel(this: Gpu, ml: Arr): number {
  if (ml[this.thread.x * 2 + 1] === 0) return Math.min(ml[this.thread.x * 2], -3.0e38) * 2;
  return ml[this.thread.x * 2] + Math.log(ml[this.thread.x * 2 + 1]);
}
