// Top-k of one score row on the host, for the fused CPU kernel: the k largest values in
// descending order, equal values toward the lower index (tensor-core's `topK` contract), in
// O(n + k log k) — a quickselect finds the k-th largest value, one pass collects what beats it.
// (A selection by repeated scans is O(n·k): at n = 128K, k = 2048 that is 2.7·10⁸ comparisons.)

/**
 * Writes the indices of the min(k, n) largest entries of row[0..n) to out[at..], best first;
 * NaN ranks with −∞. `scratch` needs n entries. Returns how many were written.
 */
export function topKInto(row: Float32Array, n: number, k: number, out: Int32Array, at: number, scratch: Float32Array): number {
  const m = Math.min(k, n);
  if (m <= 0) return 0;
  let count = 0;
  if (m === n) {
    for (let t = 0; t < n; t++) out[at + count++] = t;
  } else {
    for (let t = 0; t < n; t++) {
      const v = row[t] as number;
      scratch[t] = Number.isNaN(v) ? -Infinity : v;
    }
    const threshold = nthSmallest(scratch, n, n - m); // the m-th largest value
    for (let t = 0; t < n && count < m; t++) {
      const v = row[t] as number;
      if (v > threshold) out[at + count++] = t;
    }
    // Ties at the threshold fill the rest, lower indices first.
    for (let t = 0; t < n && count < m; t++) {
      const v = row[t] as number;
      if (v === threshold || (Number.isNaN(v) && threshold === -Infinity)) out[at + count++] = t;
    }
  }
  const picks = out.subarray(at, at + count);
  const value = (t: number): number => {
    const v = row[t] as number;
    return Number.isNaN(v) ? -Infinity : v;
  };
  picks.sort((a, b) => value(b) - value(a) || a - b || 0);
  return count;
}

/**
 * The value that would sit at ascending position `kth` of a[0..n) if it were sorted. Reorders a.
 * Quickselect with a median-of-three pivot and a three-way partition (runs of equal values are
 * settled in one pass).
 */
export function nthSmallest(a: Float32Array, n: number, kth: number): number {
  let lo = 0;
  let hi = n - 1;
  while (hi > lo) {
    const pivot = median3(a[lo] as number, a[(lo + hi) >>> 1] as number, a[hi] as number);
    // [lo, lt) < pivot, [lt, i) == pivot, (gt, hi] > pivot
    let lt = lo;
    let i = lo;
    let gt = hi;
    while (i <= gt) {
      const v = a[i] as number;
      if (v < pivot) {
        a[i] = a[lt] as number;
        a[lt] = v;
        lt++;
        i++;
      } else if (v > pivot) {
        a[i] = a[gt] as number;
        a[gt] = v;
        gt--;
      } else {
        i++;
      }
    }
    if (kth < lt) hi = lt - 1;
    else if (kth > gt) lo = gt + 1;
    else return pivot;
  }
  return a[lo] as number;
}

function median3(x: number, y: number, z: number): number {
  if (x < y) return y < z ? y : x < z ? z : x;
  return x < z ? x : y < z ? z : y;
}
