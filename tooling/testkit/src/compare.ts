// The golden comparison rule: pass iff |actual − expected| ≤ atol + rtol·|expected| for every
// element; infinities must match exactly and a NaN never passes.

export interface Tolerance {
  readonly atol: number;
  readonly rtol: number;
}

export interface Comparison {
  readonly pass: boolean;
  /** Largest |actual − expected| over finite pairs (Infinity if an infinity or NaN mismatched). */
  readonly maxAbsError: number;
  /** Largest |actual − expected| / (atol + rtol·|expected|): ≤ 1 means within tolerance. */
  readonly worstRatio: number;
  /** Flat index of the worst element, −1 when the arrays are empty. */
  readonly worstIndex: number;
  readonly message: string;
}

export function compareArrays(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: Tolerance,
): Comparison {
  if (actual.length !== expected.length) {
    return {
      pass: false,
      maxAbsError: Infinity,
      worstRatio: Infinity,
      worstIndex: -1,
      message: `length ${actual.length}, expected ${expected.length}`,
    };
  }
  let maxAbsError = 0;
  let worstRatio = 0;
  let worstIndex = actual.length > 0 ? 0 : -1;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    let err: number;
    let ratio: number;
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      const same = a === e; // matching infinities; NaN never equals anything
      err = same ? 0 : Infinity;
      ratio = same ? 0 : Infinity;
    } else {
      err = Math.abs(a - e);
      ratio = err / (tolerance.atol + tolerance.rtol * Math.abs(e));
    }
    if (err > maxAbsError) maxAbsError = err;
    if (ratio > worstRatio || Number.isNaN(ratio)) {
      worstRatio = Number.isNaN(ratio) ? Infinity : ratio;
      worstIndex = i;
    }
  }
  const pass = worstRatio <= 1;
  const message = pass
    ? `max abs err ${maxAbsError.toExponential(2)} (atol ${tolerance.atol}, rtol ${tolerance.rtol})`
    : `max abs err ${maxAbsError.toExponential(2)}, worst at [${worstIndex}]: got ${String(actual[worstIndex])}, expected ${String(expected[worstIndex])} (atol ${tolerance.atol}, rtol ${tolerance.rtol})`;
  return { pass, maxAbsError, worstRatio, worstIndex, message };
}
