// Property-based tests with fast-check: the run parameters (a bounded number of runs, a seed
// that is printed on failure and can be replayed from the environment) and the float32 error
// bounds the properties compare against.
//
//   ATTNKIT_FC_SEED=<seed> [ATTNKIT_FC_PATH=<path>] pnpm exec vitest run --project <pkg> property
//
// replays a failure exactly (the path skips straight to the shrunk counterexample);
// ATTNKIT_FC_RUNS=<n> runs more (or fewer) cases than the test's default.

import fc from 'fast-check';

/** Unit roundoff of float32. */
export const F32_UNIT = 2 ** -24;

/** γ_n = n·u / (1 − n·u): the classic bound on the relative error of a sum of n products in float32. */
export function gamma(n: number): number {
  return (n * F32_UNIT) / (1 - n * F32_UNIT);
}

export interface PropertyRun {
  readonly seed: number;
  readonly path: string | undefined;
  readonly numRuns: number;
}

/** The seed, path and run count of a property, from the environment or fresh. */
export function propertyRun(defaultRuns: number): PropertyRun {
  const seedText = process.env.ATTNKIT_FC_SEED;
  const seed = seedText !== undefined && seedText !== '' ? Number(seedText) : Math.floor(Math.random() * 2 ** 31) ^ Date.now();
  if (!Number.isInteger(seed)) throw new Error(`ATTNKIT_FC_SEED must be an integer, got ${seedText}`);
  const runsText = process.env.ATTNKIT_FC_RUNS;
  const numRuns = runsText !== undefined && runsText !== '' ? Number(runsText) : defaultRuns;
  if (!Number.isInteger(numRuns) || numRuns < 1) throw new Error(`ATTNKIT_FC_RUNS must be a positive integer, got ${runsText}`);
  const path = process.env.ATTNKIT_FC_PATH || undefined;
  return { seed, path, numRuns };
}

/**
 * Checks an async property with a bounded number of runs. On failure the error names the
 * counterexample, the seed and the path, and the command that replays it.
 */
export async function assertProperty<T>(name: string, property: fc.IAsyncPropertyWithHooks<T>, defaultRuns: number): Promise<void> {
  const run = propertyRun(defaultRuns);
  const details = await fc.check(property, { seed: run.seed, numRuns: run.numRuns, ...(run.path !== undefined ? { path: run.path } : {}), endOnFailure: false });
  if (!details.failed) return;
  const replay = `ATTNKIT_FC_SEED=${details.seed} ATTNKIT_FC_PATH=${details.counterexamplePath ?? ''}`;
  const report = fc.defaultReportMessage(details) ?? 'property failed';
  throw new Error(`${name}: ${report}\n\nReplay with: ${replay} (seed ${details.seed}, path ${details.counterexamplePath ?? ''})`, {
    cause: details.errorInstance,
  });
}

/** Finds the first element outside its tolerance, or null when all are within (NaN never is). */
export function firstOutside(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: ArrayLike<number>): string | null {
  if (actual.length !== expected.length) return `length ${actual.length}, expected ${expected.length}`;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    const t = tolerance[i] as number;
    if (!(Math.abs(a - e) <= t)) return `element ${i}: got ${a}, expected ${e} ± ${t.toExponential(2)} (off by ${Math.abs(a - e).toExponential(2)})`;
  }
  return null;
}

/**
 * The f32 error allowed to an output of a layer (a chain of projections, norms, RoPE and
 * attention) against its float64 reference: each stage adds at most γ(K_stage) relative error
 * over its reduction, so the chain's first-order bound is γ(L) with L the sum of the stages'
 * reduction lengths, applied to the element's own magnitude plus the output's largest (which
 * covers the cancellation in a sum of random-signed terms: the weights of the tests are scaled by
 * 1/√fan-in, so every stage is well conditioned). `stages` is the number of rounding stages
 * whose errors add (the factor in front).
 */
export function layerTolerance(expected: ArrayLike<number>, reductionLength: number, stages: number): Float64Array {
  let max = 0;
  for (let i = 0; i < expected.length; i++) max = Math.max(max, Math.abs(expected[i] as number));
  const rel = stages * gamma(reductionLength);
  return Float64Array.from({ length: expected.length }, (_, i) => rel * (Math.abs(expected[i] as number) + max));
}
