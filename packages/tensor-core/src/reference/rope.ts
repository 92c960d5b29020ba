import type { RopeLayout } from '../kernels.js';

/**
 * Rotates channels [offset, offset+width) of x viewed as [B, S, H, D]. `positionAt(b, s)` gives
 * the absolute position of token s of sequence b. Angles are computed in float64 and the
 * rotated values rounded to f32 on store.
 */
export function ropeApply(
  x: Float32Array,
  B: number,
  S: number,
  H: number,
  D: number,
  positionAt: (b: number, s: number) => number,
  invFreq: Float32Array,
  layout: RopeLayout,
  offset: number,
  width: number,
  out: Float32Array,
): void {
  out.set(x);
  const half = width / 2;
  const cos = new Float64Array(half);
  const sin = new Float64Array(half);
  for (let b = 0; b < B; b++) {
    for (let s = 0; s < S; s++) {
      const p = positionAt(b, s);
      for (let i = 0; i < half; i++) {
        const angle = p * (invFreq[i] as number);
        cos[i] = Math.cos(angle);
        sin[i] = Math.sin(angle);
      }
      for (let h = 0; h < H; h++) {
        const base = ((b * S + s) * H + h) * D + offset;
        for (let i = 0; i < half; i++) {
          const ia = layout === 'interleaved' ? base + 2 * i : base + i;
          const ib = layout === 'interleaved' ? ia + 1 : ia + half;
          const xa = x[ia] as number;
          const xb = x[ib] as number;
          const c = cos[i] as number;
          const sn = sin[i] as number;
          out[ia] = xa * c - xb * sn;
          out[ib] = xa * sn + xb * c;
        }
      }
    }
  }
}
