/**
 * Top-k of each row of length N: values descending, ties broken toward the lower index, NaN
 * ranked as −∞ (after every finite number, tied with −∞ by index, its value kept). Writes k
 * values and indices per row.
 */
export function topKRows(x: Float32Array, N: number, k: number, values: Float32Array, indices: Int32Array): void {
  const rows = N === 0 ? 0 : x.length / N;
  const order = new Int32Array(N);
  for (let r = 0; r < rows; r++) {
    const o = r * N;
    for (let i = 0; i < N; i++) order[i] = i;
    // Selection of the k best by partial sort: O(N·k) for small k, full sort otherwise.
    const better = (i: number, j: number): boolean => {
      const a = rank(x[o + i] as number);
      const b = rank(x[o + j] as number);
      return a > b || (a === b && i < j);
    };
    if (k * 8 < N) {
      for (let t = 0; t < k; t++) {
        let best = t;
        for (let i = t + 1; i < N; i++) if (better(order[i] as number, order[best] as number)) best = i;
        const tmp = order[t] as number;
        order[t] = order[best] as number;
        order[best] = tmp;
      }
    } else {
      const sorted = Array.from(order).sort((i, j) => (better(i, j) ? -1 : better(j, i) ? 1 : 0));
      order.set(sorted);
    }
    for (let t = 0; t < k; t++) {
      const i = order[t] as number;
      values[r * k + t] = x[o + i] as number;
      indices[r * k + t] = i;
    }
  }
}

/** The value a NaN is ranked as. */
const rank = (v: number): number => (Number.isNaN(v) ? -Infinity : v);
