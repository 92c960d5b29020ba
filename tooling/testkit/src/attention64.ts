// A float64 attention oracle written independently of the packages (plain loops over host
// arrays), returning with each output element the error a correct float32 evaluation may have:
// the property tests' reference. Bottom-right causal positions (query i of sequence b sits at
// len_b − S + i), sliding window with sinks, per-sequence lengths, sparse key lists.
//
// Error bound, per query row and head, with u the f32 unit roundoff:
//   score  s_t = scale·q·k_t:           |δs_t| ≤ e_t = γ(D+2)·scale·Σ_d |q_d k_td| + u·|s_t|
//   weight p_t = exp(s_t − m) / Σ exp:  |δp_t| ≤ p_t·(2·E + γ(T+8))   with E = max_t e_t
//                                        (exp, the running-max rescales and the sum, any order)
//   output o = Σ p_t v_t:               |δo| ≤ Σ_t p_t |v_t| · (2·E + γ(2T+8)) + u·|o|
// which any f32 implementation must meet whatever its summation order or tiling.

import { F32_UNIT, gamma } from './property.js';

export interface Attention64Problem {
  /** [B, S, Hq, D] */
  readonly q: Float32Array;
  /** [B, T, Hkv, D] (the stored values: dequantised where the tensor is quantised). */
  readonly k: Float32Array;
  /** [B, T, Hkv, Dv] */
  readonly v: Float32Array;
  readonly B: number;
  readonly S: number;
  readonly T: number;
  readonly Hq: number;
  readonly Hkv: number;
  readonly D: number;
  readonly Dv: number;
  readonly scale: number;
  readonly causal: boolean;
  readonly window: number | null;
  readonly sinkTokens: number;
  /** Valid keys per sequence (default T each). */
  readonly lengths?: readonly number[];
  /** Sparse: the logical keys query i of sequence b (kv head g) may attend to (−1 and duplicates ignored); causality still applies when `causal`. */
  readonly keys?: (b: number, i: number, g: number) => Iterable<number>;
}

export interface Attention64Result {
  /** [B, S, Hq, Dv] */
  readonly out: Float64Array;
  /** Allowed |actual − out| per element. */
  readonly tolerance: Float64Array;
}

export function attention64(p: Attention64Problem): Attention64Result {
  const { q, k, v, B, S, T, Hq, Hkv, D, Dv, scale } = p;
  const G = Hq / Hkv;
  const out = new Float64Array(B * S * Hq * Dv);
  const tolerance = new Float64Array(out.length);
  for (let b = 0; b < B; b++) {
    const len = p.lengths?.[b] ?? T;
    for (let i = 0; i < S; i++) {
      const pos = len - S + i;
      for (let h = 0; h < Hq; h++) {
        const g = Math.floor(h / G);
        const visible = visibleKeys(p, b, i, g, len, pos);
        const qOff = ((b * S + i) * Hq + h) * D;
        const scores: number[] = [];
        let E = 0;
        let max = -Infinity;
        for (const t of visible) {
          const kOff = ((b * T + t) * Hkv + g) * D;
          let dot = 0;
          let abs = 0;
          for (let d = 0; d < D; d++) {
            const prod = (q[qOff + d] as number) * (k[kOff + d] as number);
            dot += prod;
            abs += Math.abs(prod);
          }
          const s = scale * dot;
          scores.push(s);
          E = Math.max(E, gamma(D + 2) * Math.abs(scale) * abs + F32_UNIT * Math.abs(s));
          max = Math.max(max, s);
        }
        const oOff = ((b * S + i) * Hq + h) * Dv;
        if (visible.length === 0) continue; // sees no key: zeros, exactly
        let sum = 0;
        const weights = scores.map((s) => {
          const w = Math.exp(s - max);
          sum += w;
          return w;
        });
        const rel = 2 * E + gamma(2 * visible.length + 8);
        for (let d = 0; d < Dv; d++) {
          let o = 0;
          let mass = 0;
          for (const [j, t] of visible.entries()) {
            const value = v[((b * T + t) * Hkv + g) * Dv + d] as number;
            const w = (weights[j] as number) / sum;
            o += w * value;
            mass += w * Math.abs(value);
          }
          out[oOff + d] = o;
          tolerance[oOff + d] = mass * rel + F32_UNIT * Math.abs(o);
        }
      }
    }
  }
  return { out, tolerance };
}

/** The sorted logical keys query i (at position `pos`) of sequence b and kv head g attends to. */
function visibleKeys(p: Attention64Problem, b: number, i: number, g: number, len: number, pos: number): number[] {
  const candidates = p.keys ? new Set([...p.keys(b, i, g)].filter((t) => t >= 0 && t < len)) : range(len);
  const out: number[] = [];
  for (const t of candidates) {
    if (p.causal && t > pos) continue;
    if (p.window !== null && t <= pos - p.window && t >= p.sinkTokens) continue;
    out.push(t);
  }
  return out.sort((a, z) => a - z);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, t) => t);
}
