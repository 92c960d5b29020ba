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
  if (transB) {
    gemmABt(a, aOffset, b, bOffset, out, outOffset, M, N, K);
  } else {
    gemmAB(a, aOffset, b, bOffset, out, outOffset, M, N, K);
  }
}

/** A [M, K] · B[N, K]ᵀ: every output is a dot product of two contiguous rows. */
function gemmABt(a: Float32Array, ao: number, b: Float32Array, bo: number, out: Float32Array, oo: number, M: number, N: number, K: number): void {
  const n4 = N - (N % 4);
  for (let m = 0; m < M; m++) {
    const ar = ao + m * K;
    const or = oo + m * N;
    let n = 0;
    for (; n < n4; n += 4) {
      const b0 = bo + n * K;
      const b1 = b0 + K;
      const b2 = b1 + K;
      const b3 = b2 + K;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let k = 0; k < K; k++) {
        const x = a[ar + k] as number;
        s0 += x * (b[b0 + k] as number);
        s1 += x * (b[b1 + k] as number);
        s2 += x * (b[b2 + k] as number);
        s3 += x * (b[b3 + k] as number);
      }
      out[or + n] = s0;
      out[or + n + 1] = s1;
      out[or + n + 2] = s2;
      out[or + n + 3] = s3;
    }
    for (; n < N; n++) {
      const br = bo + n * K;
      let s = 0;
      for (let k = 0; k < K; k++) s += (a[ar + k] as number) * (b[br + k] as number);
      out[or + n] = s;
    }
  }
}

/** A [M, K] · B [K, N]: rows of B are scaled and accumulated into the output row (axpy order). */
function gemmAB(a: Float32Array, ao: number, b: Float32Array, bo: number, out: Float32Array, oo: number, M: number, N: number, K: number): void {
  const KB = 64; // k-block: keeps a slab of B rows hot in cache while sweeping output rows
  out.fill(0, oo, oo + M * N);
  for (let k0 = 0; k0 < K; k0 += KB) {
    const k1 = Math.min(K, k0 + KB);
    for (let m = 0; m < M; m++) {
      const ar = ao + m * K;
      const or = oo + m * N;
      let k = k0;
      for (; k + 1 < k1; k += 2) {
        const x0 = a[ar + k] as number;
        const x1 = a[ar + k + 1] as number;
        const r0 = bo + k * N;
        const r1 = r0 + N;
        for (let n = 0; n < N; n++) {
          out[or + n] = (out[or + n] as number) + x0 * (b[r0 + n] as number) + x1 * (b[r1 + n] as number);
        }
      }
      for (; k < k1; k++) {
        const x = a[ar + k] as number;
        const r = bo + k * N;
        for (let n = 0; n < N; n++) out[or + n] = (out[or + n] as number) + x * (b[r + n] as number);
      }
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
