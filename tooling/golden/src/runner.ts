import type { Backend } from '@attnkit/tensor-core';
import { type GoldenCase, compareArrays } from '@attnkit/testkit';
import { type VariantEntry, isPending } from './adapter.js';
import { VARIANTS } from './variants/index.js';

export interface BackendFactory {
  readonly name: string;
  create(): Promise<Backend>;
}

export type CaseStatus = 'pass' | 'fail' | 'skip';

export interface TensorResult {
  readonly key: string;
  readonly pass: boolean;
  readonly maxAbsError: number;
  readonly message: string;
}

export interface CaseResult {
  readonly caseName: string;
  readonly variant: string;
  readonly backend: string;
  readonly status: CaseStatus;
  /** Largest max-abs-error over the case's expected tensors (NaN when skipped or errored). */
  readonly maxAbsError: number;
  readonly tolerance: { readonly atol: number; readonly rtol: number };
  readonly tensors: readonly TensorResult[];
  /** Why it failed or was skipped. */
  readonly reason?: string;
}

export interface RunOptions {
  readonly cases: readonly GoldenCase[];
  readonly backends: readonly BackendFactory[];
  readonly variants?: Readonly<Record<string, VariantEntry>>;
  readonly onResult?: (result: CaseResult) => void;
}

/** Runs every case on every backend; never throws for a failing case (it is reported). */
export async function runGolden(options: RunOptions): Promise<CaseResult[]> {
  const variants = options.variants ?? VARIANTS;
  const results: CaseResult[] = [];
  const report = (r: CaseResult): void => {
    results.push(r);
    options.onResult?.(r);
  };
  for (const factory of options.backends) {
    const backend = await factory.create();
    try {
      for (const c of options.cases) report(await runCase(c, backend, factory.name, variants[c.variant]));
    } finally {
      await backend.dispose();
    }
  }
  return results;
}

async function runCase(c: GoldenCase, backend: Backend, backendName: string, entry: VariantEntry | undefined): Promise<CaseResult> {
  const base = { caseName: c.name, variant: c.variant, backend: backendName, tolerance: c.manifest.tolerance };
  if (!entry) return { ...base, status: 'skip', maxAbsError: NaN, tensors: [], reason: `no adapter knows variant "${c.variant}"` };
  if (isPending(entry)) return { ...base, status: 'skip', maxAbsError: NaN, tensors: [], reason: entry.pending };
  let actual: Record<string, Float32Array>;
  try {
    actual = await entry.run(c, backend);
  } catch (error) {
    const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return { ...base, status: 'fail', maxAbsError: NaN, tensors: [], reason };
  }
  const tensors: TensorResult[] = [];
  for (const key of Object.keys(c.manifest.expected)) {
    const got = actual[key];
    if (!got) {
      tensors.push({ key, pass: false, maxAbsError: Infinity, message: 'not produced by the adapter' });
      continue;
    }
    const cmp = compareArrays(got, c.tensor(key).data, c.manifest.tolerance);
    tensors.push({ key, pass: cmp.pass, maxAbsError: cmp.maxAbsError, message: cmp.message });
  }
  const failed = tensors.filter((t) => !t.pass);
  const maxAbsError = tensors.reduce((m, t) => Math.max(m, t.maxAbsError), 0);
  return {
    ...base,
    status: failed.length === 0 ? 'pass' : 'fail',
    maxAbsError,
    tensors,
    ...(failed.length > 0 ? { reason: failed.map((t) => `${t.key}: ${t.message}`).join('; ') } : {}),
  };
}

/** `N passed, M failed` plus `, K skipped` when any were skipped. */
export function summaryLine(results: readonly CaseResult[]): string {
  const passed = results.filter((r) => r.status === 'pass').length;
  const failed = results.filter((r) => r.status === 'fail').length;
  const skipped = results.filter((r) => r.status === 'skip').length;
  return `${passed} passed, ${failed} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`;
}

export function formatResult(r: CaseResult): string {
  const tag = r.status === 'pass' ? 'PASS' : r.status === 'fail' ? 'FAIL' : 'SKIP';
  const head = `${tag}  ${r.caseName.padEnd(22)} ${`[${r.backend}]`.padEnd(16)}`;
  if (r.status === 'skip') return `${head} skipped: ${r.reason ?? ''}`;
  const tol = `atol ${r.tolerance.atol}, rtol ${r.tolerance.rtol}`;
  const err = Number.isNaN(r.maxAbsError) ? 'error' : `max abs err ${r.maxAbsError.toExponential(2)}`;
  return r.status === 'pass' ? `${head} ${err} (${tol})` : `${head} ${err} (${tol}): ${r.reason ?? ''}`;
}
