// Plain-loop matrix products on f32 arrays. These are the readable oracles for every backend
// and, written with register blocking and no per-element allocation, the CPU backend's kernels.

/**
 * out[m, n] = Σ_k A[m, k] · B[k, n] for one matrix pair, where A is stored [M, K] (or [K, M]
 * when transA) and B is stored [K, N] (or [N, K] when transB). `out` is [M, N], overwritten.
 */
export function gemm(
  a: Float32Array,
  aOffset: number,
  b: Float32Array,
  bOffset: number,
  out: Float32Array,
  outOffset: number,
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
): void {
  if (transA) {
    // Materialise Aᵀ once (M·K) so the inner loops below read contiguous rows.
    const at = new Float32Array(M * K);
    for (let k = 0; k < K; k++) {
      const row = aOffset + k * M;
      for (let m = 0; m < M; m++) at[m * K + k] = a[row + m] as number;
    }
    gemm(at, 0, b, bOffset, out, outOffset, M, N, K, false, transB);
    return;
  }
  if (!transB) {
    // Bᵀ once (K·N), so every output is a dot product of two contiguous rows
    const bt = new Float32Array(N * K);
    for (let k = 0; k < K; k++) {
      const row = bOffset + k * N;
      for (let n = 0; n < N; n++) bt[n * K + k] = b[row + n] as number;
    }
    gemmABt(a, aOffset, bt, 0, out, outOffset, M, N, K);
    return;
  }
  gemmABt(a, aOffset, b, bOffset, out, outOffset, M, N, K);
}

/**
 * A [M, K] · B[N, K]ᵀ in 2×4 register tiles: two rows of A against four rows of B, eight
 * independent sums over k (6 loads per 8 multiply-adds), then the odd row and column edges.
 */
export function gemmABt(a: Float32Array, ao: number, b: Float32Array, bo: number, out: Float32Array, oo: number, M: number, N: number, K: number): void {
  const m2 = M - (M % 2);
  const n4 = N - (N % 4);
  for (let m = 0; m < m2; m += 2) {
    const a0 = ao + m * K;
    const a1 = a0 + K;
    const o0 = oo + m * N;
    const o1 = o0 + N;
    for (let n = 0; n < n4; n += 4) {
      const b0 = bo + n * K;
      const b1 = b0 + K;
      const b2 = b1 + K;
      const b3 = b2 + K;
      let s00 = 0;
      let s01 = 0;
      let s02 = 0;
      let s03 = 0;
      let s10 = 0;
      let s11 = 0;
      let s12 = 0;
      let s13 = 0;
      for (let k = 0; k < K; k++) {
        const x0 = a[a0 + k] as number;
        const x1 = a[a1 + k] as number;
        const y0 = b[b0 + k] as number;
        const y1 = b[b1 + k] as number;
        const y2 = b[b2 + k] as number;
        const y3 = b[b3 + k] as number;
        s00 += x0 * y0;
        s01 += x0 * y1;
        s02 += x0 * y2;
        s03 += x0 * y3;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s12 += x1 * y2;
        s13 += x1 * y3;
      }
      out[o0 + n] = s00;
      out[o0 + n + 1] = s01;
      out[o0 + n + 2] = s02;
      out[o0 + n + 3] = s03;
      out[o1 + n] = s10;
      out[o1 + n + 1] = s11;
      out[o1 + n + 2] = s12;
      out[o1 + n + 3] = s13;
    }
    for (let n = n4; n < N; n++) {
      const br = bo + n * K;
      let s0 = 0;
      let s1 = 0;
      for (let k = 0; k < K; k++) {
        const y = b[br + k] as number;
        s0 += (a[a0 + k] as number) * y;
        s1 += (a[a1 + k] as number) * y;
      }
      out[o0 + n] = s0;
      out[o1 + n] = s1;
    }
  }
  for (let m = m2; m < M; m++) {
    const ar = ao + m * K;
    for (let n = 0; n < N; n++) {
      const br = bo + n * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += (a[ar + k] as number) * (b[br + k] as number);
      out[oo + m * N + n] = s;
    }
  }
}

/**
 * y [R, O] = x [R, I] · W[O, I]ᵀ (+ bias [O]). `weightRow(o, scratch)` fills `scratch` with
 * row o of W as f32, so 16-bit and quantised weights are decoded one row at a time and never
 * widened as a whole.
 */
export function linearRows(
  x: Float32Array,
  R: number,
  I: number,
  O: number,
  weightRow: (o: number, scratch: Float32Array) => Float32Array,
  bias: Float32Array | null,
  out: Float32Array,
): void {
  const scratch = new Float32Array(I);
  for (let o = 0; o < O; o++) {
    const w = weightRow(o, scratch);
    const b = bias ? (bias[o] as number) : 0;
    let r = 0;
    for (; r + 1 < R; r += 2) {
      const x0 = r * I;
      const x1 = x0 + I;
      let s0 = 0;
      let s1 = 0;
      for (let i = 0; i < I; i++) {
        const wi = w[i] as number;
        s0 += (x[x0 + i] as number) * wi;
        s1 += (x[x1 + i] as number) * wi;
      }
      out[r * O + o] = s0 + b;
      out[(r + 1) * O + o] = s1 + b;
    }
    for (; r < R; r++) {
      const x0 = r * I;
      let s = 0;
      for (let i = 0; i < I; i++) s += (x[x0 + i] as number) * (w[i] as number);
      out[r * O + o] = s + b;
    }
  }
}
