// Masked softmax and log-sum-exp over the last axis. The mask is additive (0 or −∞) and is
// addressed through a per-row offset so it can broadcast. An entry whose mask is −∞ is hidden:
// probability 0 whatever x holds there (NaN and ±∞ included). Among the visible entries NaN
// propagates (a NaN or a +∞ makes the row NaN); a row with no visible entry, or whose visible
// entries are all −∞, yields zeros (softmax) or −∞ (lse).

const NO_MASK = new Float32Array(0);

/** scale·x + mask, or −∞ where the mask hides the entry (so a NaN there never surfaces). */
function masked(x: number, scale: number, maskValue: number): number {
  return maskValue === -Infinity ? -Infinity : scale * x + maskValue;
}

/** Σ exp(s − max) over the entries that are not −∞ (a NaN entry makes it NaN; no entry: 0). */
function sumExp(s: Float32Array | Float64Array, o: number, N: number, max: number, write: boolean): number {
  let sum = 0;
  for (let i = 0; i < N; i++) {
    const v = s[o + i] as number;
    const e = v === -Infinity ? 0 : Math.exp(v - max);
    if (write) s[o + i] = e;
    sum += e;
  }
  return sum;
}

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
      const s = masked(x[o + i] as number, scale, mo >= 0 ? (m[mo + i * maskStride] as number) : 0);
      out[o + i] = s;
      if (s > max) max = s; // skips NaN; the sum below carries it
    }
    const sum = sumExp(out, o, N, max, true);
    if (sum === 0) {
      out.fill(0, o, o + N);
      continue;
    }
    const inv = 1 / sum;
    // a hidden entry stays exactly 0 even when the row is NaN
    for (let i = 0; i < N; i++) out[o + i] = out[o + i] === 0 ? 0 : (out[o + i] as number) * inv;
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
  const s = new Float64Array(N);
  for (let r = 0; r < rows; r++) {
    const o = r * N;
    const mo = mask ? maskRowOffset(r) : -1;
    let max = -Infinity;
    for (let i = 0; i < N; i++) {
      const v = masked(x[o + i] as number, scale, mo >= 0 ? (m[mo + i * maskStride] as number) : 0);
      s[i] = v;
      if (v > max) max = v;
    }
    const sum = sumExp(s, 0, N, max, false);
    out[r] = sum === 0 ? -Infinity : max + Math.log(sum);
  }
}
