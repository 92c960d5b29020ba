// The plain reference of the attention core: loops over host arrays, float64 accumulation,
// one readable function for every mask. The fast kernels are tested against it.
//
// Non-finite inputs ("NaN and infinity" in apps/docs/guide/errors.md; every implementation follows it):
// the result is the defining formula over the visible keys only, in IEEE arithmetic. A masked
// key contributes nothing, NaN or not; a NaN score or a +∞ one makes the row NaN; a −∞ score
// is weight 0, but its value still enters the sum (0·NaN = NaN); a row whose visible scores
// are all −∞ (or that sees no key) outputs zeros and lse −∞.

export interface HostKV {
  /** Keys: [B, T, Hkv, D] contiguous, or a row pool [R, Hkv, D] addressed through rowMap. */
  readonly k: Float32Array;
  /** Values [..., Hkv, Dv]; null when V is the first Dv channels of each key row. */
  readonly v: Float32Array | null;
  readonly Hkv: number;
  readonly D: number;
  readonly Dv: number;
  /** Logical keys per sequence in the layout (T, or Tmax of the row map). */
  readonly T: number;
  /** i32 [B, T] physical row of each logical key, or null for the contiguous layout. */
  readonly rowMap: Int32Array | null;
  /** Valid keys per sequence. */
  readonly lengths: readonly number[];
}

export interface HostQuery {
  /** [B, S, Hq, D] */
  readonly q: Float32Array;
  readonly B: number;
  readonly S: number;
  readonly Hq: number;
}

export interface HostBias {
  readonly data: Float32Array;
  /** Broadcast shape [B|1, Hq|1, S, T] (lower ranks are padded on the left). */
  readonly shape: readonly [number, number, number, number];
}

/**
 * Which logical keys query i of sequence b (kv head g) may see, before causality. `undefined`
 * means all keys 0..len_b−1 (dense); otherwise an explicit list (sparse): a set, so a key
 * listed twice counts once; entries outside [0, len_b) are ignored.
 */
export type KeySelector = (b: number, i: number, g: number) => Iterable<number> | undefined;

export interface ReferenceOptions {
  readonly scale: number;
  readonly causal: boolean;
  /** Keys per query in the sliding window (causal only), or null. */
  readonly window: number | null;
  /** Keys 0..sinkTokens−1 stay visible through the window. */
  readonly sinkTokens?: number;
  readonly bias: HostBias | null;
  readonly select?: KeySelector;
}

/** out [B, S, Hq, Dv] and lse [B, S, Hq]. */
export function attentionReference(query: HostQuery, kv: HostKV, options: ReferenceOptions): { out: Float32Array; lse: Float32Array } {
  const { q, B, S, Hq } = query;
  const { k, v, Hkv, D, Dv, T, rowMap, lengths } = kv;
  const group = Hq / Hkv;
  const out = new Float32Array(B * S * Hq * Dv);
  const lse = new Float32Array(B * S * Hq);
  const scores = new Float64Array(T);
  const keys = new Int32Array(T);
  const acc = new Float64Array(Dv);
  const listedAt = new Int32Array(T).fill(-1); // dedupes a sparse list: the row that last listed t
  const vStride = v ? Hkv * Dv : Hkv * D;
  for (let b = 0; b < B; b++) {
    const len = lengths[b] ?? T;
    for (let i = 0; i < S; i++) {
      const p = len - S + i; // bottom-right: the S new queries end the sequence
      for (let h = 0; h < Hq; h++) {
        const g = Math.floor(h / group);
        const qOff = ((b * S + i) * Hq + h) * D;
        // 1. the visible logical keys
        let n = 0;
        const listed = options.select?.(b, i, g);
        const candidates = listed ?? range(len);
        const rowId = (b * S + i) * Hq + h;
        for (const t of candidates) {
          if (t < 0 || t >= len) continue;
          if (listed) {
            if (listedAt[t] === rowId) continue;
            listedAt[t] = rowId;
          }
          if (options.causal && t > p) continue;
          if (options.window !== null && options.causal && t <= p - options.window && t >= (options.sinkTokens ?? 0)) continue;
          keys[n++] = t;
        }
        // 2. scaled scores plus the additive bias
        let max = -Infinity;
        for (let j = 0; j < n; j++) {
          const t = keys[j] as number;
          const row = rowMap ? (rowMap[b * T + t] as number) : b * T + t;
          const kOff = (row * Hkv + g) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += (q[qOff + d] as number) * (k[kOff + d] as number);
          let s = options.scale * dot;
          if (options.bias) s += biasAt(options.bias, b, h, i, t);
          scores[j] = s;
          if (s > max || Number.isNaN(s)) max = s; // a NaN score makes the row NaN (it sticks: NaN > x is false)
        }
        const oOff = ((b * S + i) * Hq + h) * Dv;
        if (max === -Infinity) {
          // nothing visible, or every visible score −∞: output stays 0 (whatever the values hold)
          lse[(b * S + i) * Hq + h] = -Infinity;
          continue;
        }
        // 3. softmax-weighted sum of the values. Every visible key's value enters the sum, even
        //    at weight 0: IEEE 0·NaN is NaN, so a NaN value of a visible key reaches the row.
        acc.fill(0);
        let sum = 0;
        for (let j = 0; j < n; j++) {
          const w = Math.exp((scores[j] as number) - max);
          sum += w;
          const t = keys[j] as number;
          const row = rowMap ? (rowMap[b * T + t] as number) : b * T + t;
          const src = v ?? k;
          const vOff = row * vStride + g * (v ? Dv : D);
          for (let d = 0; d < Dv; d++) acc[d] = (acc[d] as number) + w * (src[vOff + d] as number);
        }
        for (let d = 0; d < Dv; d++) out[oOff + d] = (acc[d] as number) / sum;
        lse[(b * S + i) * Hq + h] = max + Math.log(sum);
      }
    }
  }
  return { out, lse };
}

function* range(n: number): Iterable<number> {
  for (let t = 0; t < n; t++) yield t;
}

function biasAt(bias: HostBias, b: number, h: number, i: number, t: number): number {
  const [Bb, Hb, Sb, Tb] = bias.shape;
  const idx = (((Bb === 1 ? 0 : b) * Hb + (Hb === 1 ? 0 : h)) * Sb + (Sb === 1 ? 0 : i)) * Tb + (Tb === 1 ? 0 : t);
  return bias.data[idx] as number;
}
