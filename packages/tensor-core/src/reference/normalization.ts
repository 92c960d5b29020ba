/** RMSNorm over rows of length D: y = x / sqrt(mean(x²) + eps) ⊙ w. */
export function rmsNormRows(x: Float32Array, D: number, weight: Float32Array | null, eps: number, out: Float32Array): void {
  const rows = x.length / D;
  for (let r = 0; r < rows; r++) {
    const o = r * D;
    let ss = 0;
    for (let i = 0; i < D; i++) {
      const v = x[o + i] as number;
      ss += v * v;
    }
    const inv = 1 / Math.sqrt(ss / D + eps);
    for (let i = 0; i < D; i++) out[o + i] = (x[o + i] as number) * inv * (weight ? (weight[i] as number) : 1);
  }
}

/** LayerNorm over rows of length D with biased variance: y = (x − μ)/sqrt(σ² + eps) ⊙ w + b. */
export function layerNormRows(
  x: Float32Array,
  D: number,
  weight: Float32Array | null,
  bias: Float32Array | null,
  eps: number,
  out: Float32Array,
): void {
  const rows = x.length / D;
  for (let r = 0; r < rows; r++) {
    const o = r * D;
    let mean = 0;
    for (let i = 0; i < D; i++) mean += x[o + i] as number;
    mean /= D;
    let variance = 0;
    for (let i = 0; i < D; i++) {
      const d = (x[o + i] as number) - mean;
      variance += d * d;
    }
    const inv = 1 / Math.sqrt(variance / D + eps);
    for (let i = 0; i < D; i++) {
      const y = ((x[o + i] as number) - mean) * inv;
      out[o + i] = y * (weight ? (weight[i] as number) : 1) + (bias ? (bias[i] as number) : 0);
    }
  }
}
