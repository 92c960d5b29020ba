// Top-k of one score row on the host, for the fused CPU kernel: the k largest values in
// descending order, equal values toward the lower index (tensor-core's `topK` contract), in
// O(n + k log k). Each value becomes an int32 that orders as the float does; a radix select
// (three histogram passes of 11, 11 and 10 bits, each over the values whose higher bits match)
// finds the k-th largest, one pass collects what beats it, and the picks are sorted as packed
// float64 keys by the engine's numeric sort. (Session 7, 64K scores, k = 2048: 2.7 ms with a
// quickselect and a comparator sort before; a selection by repeated scans would be O(n·k).)

/** The three radix digits of a uint32 key: [shift, bits]. */
const DIGITS: readonly (readonly [number, number])[] = [
  [21, 11],
  [10, 11],
  [0, 10],
];
/** Picks sort as key·2^INDEX_BITS + (2^INDEX_BITS − 1 − index) in a float64 (exact below 2^53). */
const INDEX_BITS = 21;

/**
 * Writes the indices of the min(k, n) largest entries of row[0..n) to out[at..], best first;
 * NaN ranks with −∞, −0 with +0. `scratch` needs n entries. Returns how many were written.
 */
export function topKInto(row: Float32Array, n: number, k: number, out: Int32Array, at: number, scratch: Float32Array): number {
  const m = Math.min(k, n);
  if (m <= 0) return 0;
  // order keys in scratch's memory, as int32: a float's bits, the magnitude bits flipped when
  // negative, order as the float does (NaN → −∞ and −0 → +0 first); the top digit's histogram
  // in the same pass (its sign bit flipped, so digits order as unsigned)
  const keys = new Int32Array(scratch.buffer, scratch.byteOffset, n);
  const histogram = new Int32Array(1 << 11);
  for (let t = 0; t < n; t++) {
    const v = (row[t] as number) + 0; // −0 + 0 is +0
    scratch[t] = v === v ? v : -Infinity;
  }
  const top = (DIGITS[0] as readonly [number, number])[0];
  for (let t = 0; t < n; t++) {
    const bits = keys[t] as number;
    const key = bits ^ ((bits >> 31) & 0x7fffffff);
    keys[t] = key;
    const bucket = (key >>> top) ^ 0x400;
    histogram[bucket] = (histogram[bucket] as number) + 1;
  }
  // the m-th largest key, digit by digit from the top
  let prefix = 0;
  let prefixMask = 0;
  let need = m;
  for (const [d, [shift, bits]] of DIGITS.entries()) {
    const size = 1 << bits;
    const flip = d === 0 ? 0x400 : 0;
    if (d > 0) {
      histogram.fill(0, 0, size);
      for (let t = 0; t < n; t++) {
        const key = keys[t] as number;
        if ((key & prefixMask) !== prefix) continue;
        const bucket = (key >>> shift) & (size - 1);
        histogram[bucket] = (histogram[bucket] as number) + 1;
      }
    }
    let digit = size - 1;
    for (; digit > 0 && (histogram[digit] as number) < need; digit--) need -= histogram[digit] as number;
    prefix |= (digit ^ flip) << shift;
    prefixMask |= (size - 1) << shift;
  }
  // what beats the threshold, and the first `need` ties (lower indices first)
  const threshold = prefix;
  let count = 0;
  for (let t = 0; t < n; t++) {
    const key = keys[t] as number;
    if (key > threshold || (key === threshold && need-- > 0)) out[at + count++] = t;
  }
  const picks = out.subarray(at, at + count);
  if (n <= 2 ** INDEX_BITS) {
    // key + 2^31 ≥ 0 orders as key; the index part descends, so ties end up lower index first
    const packed = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const t = picks[i] as number;
      packed[i] = ((keys[t] as number) + 2 ** 31) * 2 ** INDEX_BITS + (2 ** INDEX_BITS - 1 - t);
    }
    packed.sort();
    for (let i = 0; i < count; i++) picks[i] = 2 ** INDEX_BITS - 1 - ((packed[count - 1 - i] as number) % 2 ** INDEX_BITS);
  } else {
    picks.sort((a, b) => (keys[b] as number) - (keys[a] as number) || a - b);
  }
  return count;
}
