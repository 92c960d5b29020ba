// gpu.js kernels of the fused attention core. gpu.js computes one value per thread, so one key
// chunk of the online softmax is three launches over rows r = (b, c, h) of a query chunk:
//   keys   [R, Tc]     logical key of each (row, slot) or −1: masks, windows, sparse lists
//   scores [R, Tc]     scale·q·k + bias, or NEG for a hidden slot
//   update [R, Dv + 2] the running state: Dv accumulators, then m and l, rescaled by exp(m_old − m_new)
// and, after the last chunk, `finish` (out = acc / l) and `lse` (m + ln l).
//
// Rules (gpu.js compiles these from their source text): plain functions, integers only inline
// (locals are f32; `| 0` casts back), loop counters from a literal 0, quotients through idiv.

import type { Arr, Gpu } from '../host.js';

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

// Thread (x = column, y = row r) of the state [R, Dv + 2]: columns < Dv accumulate
// Σ exp(s − m_new)·v, column Dv is m_new, column Dv + 1 is l_new.
export function flashUpdateKernel(
  this: Gpu,
  state: Arr,
  scores: Arr,
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
  const mOld = state[this.thread.y * (Dv + 2) + Dv];
  let mx = -3.0e38;
  for (let j = 0; j < Tc; j++) mx = Math.max(mx, scores[this.thread.y * Tc + j]);
  const mNew = Math.max(mOld, mx);
  if (this.thread.x === Dv) return mNew;
  let corr = 0;
  if (mOld > -1.0e38) corr = Math.exp(mOld - mNew);
  if (this.thread.x === Dv + 1) {
    let sum = 0;
    for (let i = 0; i < Tc; i++) {
      if (scores[this.thread.y * Tc + i] > -1.0e38) sum += Math.exp(scores[this.thread.y * Tc + i] - mNew);
    }
    return state[this.thread.y * (Dv + 2) + Dv + 1] * corr + sum;
  }
  const b = qdiv(this.thread.y, Sc * Hq);
  const g = qdiv(this.thread.y - qdiv(this.thread.y, Hq) * Hq, G);
  let acc = state[this.thread.y * (Dv + 2) + this.thread.x] * corr;
  for (let n = 0; n < Tc; n++) {
    if (scores[this.thread.y * Tc + n] > -1.0e38) {
      let row = (b | 0) * T + (keys[this.thread.y * Tc + n] | 0);
      if (hasRowMap === 1) row = rowMap[(b | 0) * T + (keys[this.thread.y * Tc + n] | 0)];
      acc += Math.exp(scores[this.thread.y * Tc + n] - mNew) * v[((row | 0) * Hkv + (g | 0)) * vW + this.thread.x];
    }
  }
  return acc;
}

// Thread (x = d, y = row r): out = acc / l, or 0 for a row that saw no key.
export function flashFinishKernel(this: Gpu, state: Arr, Dv: number): number {
  const l = state[this.thread.y * (Dv + 2) + Dv + 1];
  if (l > 0) return state[this.thread.y * (Dv + 2) + this.thread.x] / l;
  return 0;
}

// Thread r: lse = m + ln l; a row that saw no key has l = 0, so ln l = −∞.
export function flashLseKernel(this: Gpu, state: Arr, Dv: number): number {
  return state[this.thread.x * (Dv + 2) + Dv] + Math.log(state[this.thread.x * (Dv + 2) + Dv + 1]);
}
