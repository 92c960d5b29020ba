// Masked softmax and log-sum-exp over the last axis. The mask is additive (0 or −∞) and is
// addressed through a per-row offset so it can broadcast; a row that is entirely −∞ yields
// zeros (softmax) or −∞ (lse), never NaN.

const NO_MASK = new Float32Array(0);

/** `maskRow(r)` returns the offset of row r's mask in `mask`, or −1 for no mask on that row. */
export function softmaxRows(
  x: Float32Array,
  N: number,
  scale: number,
  mask: Float32Array | null,
  maskRowOffset: (row: number) => number,
  maskStride: number,
  out: Float32Array,
): void {
  const rows = N === 0 ? 0 : x.length / N;
  const m = mask ?? NO_MASK;
  for (let r = 0; r < rows; r++) {
    const o = r * N;
    const mo = mask ? maskRowOffset(r) : -1;
    let max = -Infinity;
    for (let i = 0; i < N; i++) {
      const s = scale * (x[o + i] as number) + (mo >= 0 ? (m[mo + i * maskStride] as number) : 0);
      out[o + i] = s;
      if (s > max) max = s;
    }
    if (max === -Infinity) {
      out.fill(0, o, o + N);
      continue;
    }
    let sum = 0;
    for (let i = 0; i < N; i++) {
      const e = Math.exp((out[o + i] as number) - max);
      out[o + i] = e;
      sum += e;
    }
    const inv = 1 / sum;
    for (let i = 0; i < N; i++) out[o + i] = (out[o + i] as number) * inv;
  }
}

export function logSumExpRows(
  x: Float32Array,
  N: number,
  scale: number,
  mask: Float32Array | null,
  maskRowOffset: (row: number) => number,
  maskStride: number,
  out: Float32Array,
): void {
  const rows = out.length;
  const m = mask ?? NO_MASK;
  for (let r = 0; r < rows; r++) {
    const o = r * N;
    const mo = mask ? maskRowOffset(r) : -1;
    let max = -Infinity;
    for (let i = 0; i < N; i++) {
      const s = scale * (x[o + i] as number) + (mo >= 0 ? (m[mo + i * maskStride] as number) : 0);
      if (s > max) max = s;
    }
    if (max === -Infinity) {
      out[r] = -Infinity;
      continue;
    }
    let sum = 0;
    for (let i = 0; i < N; i++) {
      const s = scale * (x[o + i] as number) + (mo >= 0 ? (m[mo + i * maskStride] as number) : 0);
      sum += Math.exp(s - max);
    }
    out[r] = max + Math.log(sum);
  }
}
