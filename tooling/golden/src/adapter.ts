import type { Backend } from '@attnkit/tensor-core';
import type { GoldenCase } from '@attnkit/testkit';

/**
 * How one variant runs a golden case: given the case and a backend, produce an array for
 * every key of `manifest.expected` (a missing key fails the case; nothing is compared loosely).
 */
export interface VariantAdapter {
  /** The package that implements the variant, for the report. */
  readonly implementedBy: string;
  run(goldenCase: GoldenCase, backend: Backend): Promise<Record<string, Float32Array>>;
}

/** A variant whose package has not landed yet: its cases are listed as skipped, with the reason. */
export interface PendingVariant {
  readonly pending: string;
}

export type VariantEntry = VariantAdapter | PendingVariant;

export function isPending(entry: VariantEntry): entry is PendingVariant {
  return 'pending' in entry;
}
