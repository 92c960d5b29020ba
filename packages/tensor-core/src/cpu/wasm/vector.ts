// Vector building blocks for SIMD kernels: a polynomial e^x in f32x4 (WebAssembly has no
// transcendental instructions, and a call out to Math.exp per lane would cost more than the
// dot products around it), horizontal max / sum, and the 4-vector reduction that turns four
// dot-product accumulators into one vector of four sums.

import { type Expr, type FunctionBuilder, type Local, f32, f32x4, get, i32, i32x4, seq, set, shuffle32, tee, v128 } from './emit.js';

const LOG2E = 1.4426950408889634;
// ln 2 split so that n·LN2_HI is exact in f32 for |n| ≤ 2^9 (Cody–Waite range reduction)
const LN2_HI = 0.693359375;
const LN2_LO = -2.12194440e-4;
/** Below this e^x is under 2^−126 (f32's smallest normal): the result is flushed to 0. */
export const EXP_UNDERFLOW = -87.33654475;
const EXP_OVERFLOW = 88.37626266;
/** 2^23 + 127: adding it to an integer-valued f32 n ∈ [−127, 128] leaves n + 127 in the low bits. */
const EXPONENT_MAGIC = 8388608 + 127;
// minimax coefficients of (e^r − 1 − r)/r² on [−ln2/2, ln2/2] (Cephes expf)
const EXP_POLY = [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1] as const;

/**
 * e^x per lane for x in [−∞, 88.37]: x = n·ln2 + r with |r| ≤ ln2/2, e^r by a degree-7
 * polynomial (Cephes' expf), 2^n assembled in the exponent bits. Relative error ≤ 2 ulp in
 * f32 for results ≥ 2^−126 (tested against Math.exp: see vector.test.ts); results below that
 * (x < −87.34, and x = −∞) are exactly 0. NaN stays NaN. Needs three v128 temporaries of `f`.
 * `fma`: the polynomial's multiply-adds as `f32x4.relaxed_madd` (the engine must validate
 * relaxed SIMD; whether it fuses is the engine's choice, and both stay within the bound).
 * `nonPositive`: for inputs ≤ 0 only (a softmax's s − max): no overflow clamp and no flush to 0 —
 * below −87.34 (−∞ included) the result is ~2^−126 instead of 0, NaN still NaN; 4 instructions
 * fewer per vector.
 */
export function vectorExp(f: FunctionBuilder, options: { readonly fma?: boolean; readonly nonPositive?: boolean } = {}): (x: Expr) => Expr {
  const x = f.local('v128');
  const n = f.local('v128');
  const r = f.local('v128');
  const splat = (c: number): Expr => f32x4.splat(f32.const(c));
  // a·b + c: relaxed SIMD's FMA where the caller validated it (one rounding instead of two)
  const madd = (a: Expr, b: Expr, c: Expr): Expr => (options.fma === true ? f32x4.relaxed_madd(a, b, c) : f32x4.add(f32x4.mul(a, b), c));
  return (input: Expr): Expr => {
    let poly: Expr = splat(EXP_POLY[0]);
    for (const c of EXP_POLY.slice(1)) poly = madd(poly, get(r), splat(c));
    // e^r = 1 + r + r²·poly(r), times 2^n. 2^n's bits: n + 127 is an integer in [1, 255], so
    // (n + 127 + 2^23)'s low mantissa bits hold it, and a shift by 23 moves it into the exponent
    // field (cheaper than trunc_sat, ~7 instructions)
    const scaled = f32x4.mul(f32x4.add(madd(f32x4.mul(get(r), get(r)), poly, get(r)), splat(1)), i32x4.shl(f32x4.add(get(n), splat(EXPONENT_MAGIC)), i32.const(23)));
    const reduce = [
      set(n, f32x4.nearest(f32x4.mul(get(r), splat(LOG2E)))),
      set(r, f32x4.sub(f32x4.sub(get(r), f32x4.mul(get(n), splat(LN2_HI))), f32x4.mul(get(n), splat(LN2_LO)))),
    ];
    if (options.nonPositive === true) {
      // x ≤ 0: no overflow clamp, and below the underflow bound e^−87.34 (≈ 2^−126) itself
      return seq(set(r, f32x4.pmax(input, splat(EXP_UNDERFLOW))), ...reduce, scaled);
    }
    return seq(
      // pmin / pmax: one instruction each, and a NaN input stays NaN (it is their first operand)
      set(x, f32x4.pmin(input, splat(EXP_OVERFLOW))),
      // r holds the clamped x until it becomes the reduced argument
      set(r, f32x4.pmax(get(x), splat(EXP_UNDERFLOW))),
      ...reduce,
      // 0 where x underflows (−∞ included)
      v128.and(scaled, v128.not(f32x4.lt(get(x), splat(EXP_UNDERFLOW)))),
    );
  };
}

/** Below this 2^x is under 2^−126 (f32's smallest normal). */
export const EXP2_UNDERFLOW = -126;
// minimax coefficients of (2^f − 1)/f on [−1/2, 1/2], degree 5 (relative error of 1 + f·P(f)
// 2·10^−9 in exact arithmetic; < 1 ulp in f32 with FMA)
const EXP2_POLY = [1.5353300841525197e-4, 1.3398848241195083e-3, 9.61843691766262e-3, 5.5503323674201965e-2, 2.4022647738456726e-1, 6.931471824645996e-1] as const;

/**
 * 2^x per lane for x ≤ 0 (a softmax's s − max when the scores are in log2 units: queries scaled
 * by log2 e): x = n + f with n = round(x), |f| ≤ 1/2 exact, 2^f = 1 + f·P(f) by a degree-6
 * polynomial, 2^n assembled in the exponent bits. Relative error ≤ 2 ulp for x ∈ [−126, 0]
 * (tested against 2^x: see vector.test.ts); below −126 (−∞ included) the result is 2^−126, NaN
 * stays NaN. No Cody–Waite split and no multiply by log2 e: 6 instructions fewer per vector than
 * `vectorExp(f, { nonPositive: true })`. Needs two v128 temporaries of `f`. `fma` as for vectorExp.
 */
export function vectorExp2(f: FunctionBuilder, options: { readonly fma?: boolean } = {}): (x: Expr) => Expr {
  const n = f.local('v128');
  const r = f.local('v128');
  const splat = (c: number): Expr => f32x4.splat(f32.const(c));
  const madd = (a: Expr, b: Expr, c: Expr): Expr => (options.fma === true ? f32x4.relaxed_madd(a, b, c) : f32x4.add(f32x4.mul(a, b), c));
  return (input: Expr): Expr => {
    let poly: Expr = splat(EXP2_POLY[0]);
    for (const c of EXP2_POLY.slice(1)) poly = madd(poly, get(r), splat(c));
    return seq(
      // pmax: one instruction, a NaN input stays NaN (its first operand)
      set(r, f32x4.pmax(input, splat(EXP2_UNDERFLOW))),
      set(n, f32x4.nearest(get(r))),
      set(r, f32x4.sub(get(r), get(n))), // exact: |r| ≤ 1/2 and r, n within 2^7
      // (1 + f·P(f))·2^n, 2^n's bits from n + 127 ∈ [1, 127] as in vectorExp
      f32x4.mul(madd(get(r), poly, splat(1)), i32x4.shl(f32x4.add(get(n), splat(EXPONENT_MAGIC)), i32.const(23))),
    );
  };
}

/** The largest lane of v (as an f32 scalar); `tmp` is a v128 local. */
export function horizontalMax(v: Expr, tmp: Local): Expr {
  return f32x4.extract_lane(
    f32x4.max(tee(tmp, f32x4.max(tee(tmp, v), shuffle32(get(tmp), get(tmp), [2, 3, 0, 1]))), shuffle32(get(tmp), get(tmp), [1, 0, 3, 2])),
    0,
  );
}

/** The sum of v's lanes (as an f32 scalar); `tmp` is a v128 local. */
export function horizontalSum(v: Expr, tmp: Local): Expr {
  return f32x4.extract_lane(
    f32x4.add(tee(tmp, f32x4.add(tee(tmp, v), shuffle32(get(tmp), get(tmp), [2, 3, 0, 1]))), shuffle32(get(tmp), get(tmp), [1, 0, 3, 2])),
    0,
  );
}

/** [Σa, Σb, Σc, Σd] of four accumulators: two shuffle-add rounds; t1, t2 are v128 temporaries. */
export function reduce4(a: Local, b: Local, c: Local, d: Local, t1: Local, t2: Local): Expr {
  return seq(
    // t1 = [a0+a2, b0+b2, a1+a3, b1+b3], t2 the same for c, d
    set(t1, f32x4.add(shuffle32(get(a), get(b), [0, 4, 1, 5]), shuffle32(get(a), get(b), [2, 6, 3, 7]))),
    set(t2, f32x4.add(shuffle32(get(c), get(d), [0, 4, 1, 5]), shuffle32(get(c), get(d), [2, 6, 3, 7]))),
    f32x4.add(shuffle32(get(t1), get(t2), [0, 1, 4, 5]), shuffle32(get(t1), get(t2), [2, 3, 6, 7])),
  );
}
