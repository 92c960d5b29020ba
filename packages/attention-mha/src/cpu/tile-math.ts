// The inner loops of the CPU flash kernel, on one tile: R query rows (already scaled, f64)
// against n keys whose rows are read through an offset table. Register-blocked 2 rows × 4 keys:
// each loaded key element feeds two rows and each query element four keys, which keeps 8
// accumulators and 6 operands in registers (x86-64 has 16). Scores and accumulators are
// float64; keys and values stay in their f32 arrays.
//
// Layout: qs [R, D]; scores / probabilities [R, stride] (stride ≥ n); acc [R, Dv].

/** s[r, j] = qs[r] · k[kOff[j] .. kOff[j] + D) for r < R, j < n. */
export function scoreTile(
  qs: Float64Array,
  R: number,
  D: number,
  k: Float32Array,
  kOff: Int32Array,
  n: number,
  s: Float64Array,
  stride: number,
): void {
  const n4 = n - (n % 4);
  let r = 0;
  for (; r + 1 < R; r += 2) {
    const q0 = r * D;
    const q1 = q0 + D;
    const o0 = r * stride;
    const o1 = o0 + stride;
    let j = 0;
    for (; j < n4; j += 4) {
      const k0 = kOff[j] as number;
      const k1 = kOff[j + 1] as number;
      const k2 = kOff[j + 2] as number;
      const k3 = kOff[j + 3] as number;
      let s00 = 0;
      let s01 = 0;
      let s02 = 0;
      let s03 = 0;
      let s10 = 0;
      let s11 = 0;
      let s12 = 0;
      let s13 = 0;
      for (let d = 0; d < D; d++) {
        const a = qs[q0 + d] as number;
        const b = qs[q1 + d] as number;
        const x0 = k[k0 + d] as number;
        const x1 = k[k1 + d] as number;
        const x2 = k[k2 + d] as number;
        const x3 = k[k3 + d] as number;
        s00 += a * x0;
        s01 += a * x1;
        s02 += a * x2;
        s03 += a * x3;
        s10 += b * x0;
        s11 += b * x1;
        s12 += b * x2;
        s13 += b * x3;
      }
      s[o0 + j] = s00;
      s[o0 + j + 1] = s01;
      s[o0 + j + 2] = s02;
      s[o0 + j + 3] = s03;
      s[o1 + j] = s10;
      s[o1 + j + 1] = s11;
      s[o1 + j + 2] = s12;
      s[o1 + j + 3] = s13;
    }
    for (; j < n; j++) {
      const kj = kOff[j] as number;
      let s0 = 0;
      let s1 = 0;
      for (let d = 0; d < D; d++) {
        const x = k[kj + d] as number;
        s0 += (qs[q0 + d] as number) * x;
        s1 += (qs[q1 + d] as number) * x;
      }
      s[o0 + j] = s0;
      s[o1 + j] = s1;
    }
  }
  if (r < R) {
    // odd last row: 1 × 4 blocking
    const q0 = r * D;
    const o0 = r * stride;
    let j = 0;
    for (; j < n4; j += 4) {
      const k0 = kOff[j] as number;
      const k1 = kOff[j + 1] as number;
      const k2 = kOff[j + 2] as number;
      const k3 = kOff[j + 3] as number;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let d = 0; d < D; d++) {
        const a = qs[q0 + d] as number;
        s0 += a * (k[k0 + d] as number);
        s1 += a * (k[k1 + d] as number);
        s2 += a * (k[k2 + d] as number);
        s3 += a * (k[k3 + d] as number);
      }
      s[o0 + j] = s0;
      s[o0 + j + 1] = s1;
      s[o0 + j + 2] = s2;
      s[o0 + j + 3] = s3;
    }
    for (; j < n; j++) {
      const kj = kOff[j] as number;
      let s0 = 0;
      for (let d = 0; d < D; d++) s0 += (qs[q0 + d] as number) * (k[kj + d] as number);
      s[o0 + j] = s0;
    }
  }
}

/**
 * The online-softmax step of one tile, in place: scores become unnormalised probabilities
 * exp(s − m_new), each row's running max m and sum l are updated, and its accumulator is
 * rescaled by exp(m_old − m_new). A row whose tile scores are all −∞ contributes nothing
 * (its probabilities are set to 0 and its state is left alone), so −∞ never meets −∞.
 * NaN propagates: the max skips it (x > mx is false), but exp(NaN − m) is NaN, so l (and the
 * accumulator, through P·V) become NaN; a tile whose scores are all NaN or −∞ sets m and l to
 * NaN itself (the only case the sum would miss).
 */
export function softmaxTile(
  s: Float64Array,
  R: number,
  n: number,
  stride: number,
  m: Float64Array,
  l: Float64Array,
  acc: Float64Array,
  Dv: number,
): void {
  for (let r = 0; r < R; r++) {
    const o = r * stride;
    let mx = -Infinity;
    for (let j = 0; j < n; j++) {
      const x = s[o + j] as number;
      if (x > mx) mx = x;
    }
    if (mx === -Infinity) {
      for (let j = 0; j < n; j++) {
        if (Number.isNaN(s[o + j])) {
          m[r] = NaN;
          l[r] = NaN;
          break;
        }
      }
      s.fill(0, o, o + n);
      continue;
    }
    const mOld = m[r] as number;
    const mNew = mx > mOld ? mx : mOld;
    let sum = 0;
    for (let j = 0; j < n; j++) {
      const e = Math.exp((s[o + j] as number) - mNew);
      s[o + j] = e;
      sum += e;
    }
    if (mNew !== mOld) {
      const corr = Math.exp(mOld - mNew); // 0 on the row's first visible tile
      l[r] = (l[r] as number) * corr + sum;
      m[r] = mNew;
      const a = r * Dv;
      if (corr === 0) acc.fill(0, a, a + Dv);
      else for (let d = 0; d < Dv; d++) acc[a + d] = (acc[a + d] as number) * corr;
    } else {
      l[r] = (l[r] as number) + sum;
    }
  }
}

/**
 * acc[r] += Σ_j p[r, j] · v[vOff[j] .. vOff[j] + Dv), blocked 2 rows × 4 keys. Every key of
 * the tile enters, even at weight 0 (0·NaN is NaN): the tile must hold only keys the R rows
 * see — a tile with keys hidden from some rows goes through accumulateVisible.
 */
export function accumulateTile(
  p: Float64Array,
  R: number,
  n: number,
  stride: number,
  v: Float32Array,
  vOff: Int32Array,
  Dv: number,
  acc: Float64Array,
): void {
  const n4 = n - (n % 4);
  let r = 0;
  for (; r + 1 < R; r += 2) {
    const p0 = r * stride;
    const p1 = p0 + stride;
    const a0 = r * Dv;
    const a1 = a0 + Dv;
    let j = 0;
    for (; j < n4; j += 4) {
      const w00 = p[p0 + j] as number;
      const w01 = p[p0 + j + 1] as number;
      const w02 = p[p0 + j + 2] as number;
      const w03 = p[p0 + j + 3] as number;
      const w10 = p[p1 + j] as number;
      const w11 = p[p1 + j + 1] as number;
      const w12 = p[p1 + j + 2] as number;
      const w13 = p[p1 + j + 3] as number;
      const v0 = vOff[j] as number;
      const v1 = vOff[j + 1] as number;
      const v2 = vOff[j + 2] as number;
      const v3 = vOff[j + 3] as number;
      for (let d = 0; d < Dv; d++) {
        const x0 = v[v0 + d] as number;
        const x1 = v[v1 + d] as number;
        const x2 = v[v2 + d] as number;
        const x3 = v[v3 + d] as number;
        acc[a0 + d] = (acc[a0 + d] as number) + w00 * x0 + w01 * x1 + w02 * x2 + w03 * x3;
        acc[a1 + d] = (acc[a1 + d] as number) + w10 * x0 + w11 * x1 + w12 * x2 + w13 * x3;
      }
    }
    for (; j < n; j++) {
      const w0 = p[p0 + j] as number;
      const w1 = p[p1 + j] as number;
      const vj = vOff[j] as number;
      for (let d = 0; d < Dv; d++) {
        const x = v[vj + d] as number;
        acc[a0 + d] = (acc[a0 + d] as number) + w0 * x;
        acc[a1 + d] = (acc[a1 + d] as number) + w1 * x;
      }
    }
  }
  if (r < R) {
    const p0 = r * stride;
    const a0 = r * Dv;
    let j = 0;
    for (; j < n4; j += 4) {
      const w0 = p[p0 + j] as number;
      const w1 = p[p0 + j + 1] as number;
      const w2 = p[p0 + j + 2] as number;
      const w3 = p[p0 + j + 3] as number;
      const v0 = vOff[j] as number;
      const v1 = vOff[j + 1] as number;
      const v2 = vOff[j + 2] as number;
      const v3 = vOff[j + 3] as number;
      for (let d = 0; d < Dv; d++) {
        acc[a0 + d] =
          (acc[a0 + d] as number) + w0 * (v[v0 + d] as number) + w1 * (v[v1 + d] as number) + w2 * (v[v2 + d] as number) + w3 * (v[v3 + d] as number);
      }
    }
    for (; j < n; j++) {
      const w = p[p0 + j] as number;
      const vj = vOff[j] as number;
      for (let d = 0; d < Dv; d++) acc[a0 + d] = (acc[a0 + d] as number) + w * (v[vj + d] as number);
    }
  }
}

/**
 * acc[r] += Σ p[r, j] · v_j over the keys j the row sees (visible[r·stride + j] = 1): the tiles
 * where a mask edge passes between the rows (the causal diagonal, a window's edge). A hidden
 * key is skipped, not weighted by 0, so a NaN in its value never reaches the row.
 */
export function accumulateVisible(
  p: Float64Array,
  visible: Uint8Array,
  R: number,
  n: number,
  stride: number,
  v: Float32Array,
  vOff: Int32Array,
  Dv: number,
  acc: Float64Array,
): void {
  for (let r = 0; r < R; r++) {
    const p0 = r * stride;
    const a0 = r * Dv;
    for (let j = 0; j < n; j++) {
      if (visible[p0 + j] === 0) continue;
      const w = p[p0 + j] as number;
      const vj = vOff[j] as number;
      for (let d = 0; d < Dv; d++) acc[a0 + d] = (acc[a0 + d] as number) + w * (v[vj + d] as number);
    }
  }
}

/** Whether the n value rows v[vOff[j] .. vOff[j] + Dv) are all finite (x − x is 0 only for a finite x). */
export function valuesFinite(v: Float32Array, vOff: Int32Array, n: number, Dv: number): boolean {
  for (let j = 0; j < n; j++) {
    const o = vOff[j] as number;
    for (let d = 0; d < Dv; d++) {
      const x = v[o + d] as number;
      if (x - x !== 0) return false;
    }
  }
  return true;
}
