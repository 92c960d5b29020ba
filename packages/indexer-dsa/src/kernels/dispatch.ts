// Picks the implementation of one scoring call: the first fused kernel whose `supports` accepts
// it on this backend, else the composed fallback (MLX fast.cpp style); `reference` runs the
// float64 host oracle. The result says what ran and why a fused kernel declined.

import { type Backend, ConfigError, cast, reshape, slice, tensor } from '@attnkit/tensor-core';
import { indexerReference } from '../reference.js';
import { composedIndexer } from './composed.js';
import { cpuIndexerKernel } from './cpu.js';
import { gpujsIndexerKernel } from './gpujs/indexer.js';
import { webgpuIndexerKernel } from './webgpu/indexer.js';
import type { FusedIndexerKernel, IndexerImplementation, IndexerScoreInputs, IndexerScoreOutputs, IndexerScoreProblem } from './problem.js';

/** Fused kernels in the order they are tried. */
export const FUSED_INDEXER_KERNELS: readonly FusedIndexerKernel[] = [cpuIndexerKernel, webgpuIndexerKernel, gpujsIndexerKernel];

export interface IndexerDispatchReport {
  /** `fused:<kernel>`, `composed` or `reference`. */
  readonly implementation: string;
  /** Why each fused kernel tried before the one that ran (or all, when none ran) declined. */
  readonly declined?: string;
}

export async function dispatchIndexer(
  backend: Backend,
  inputs: IndexerScoreInputs,
  problem: IndexerScoreProblem,
  implementation: IndexerImplementation = 'auto',
): Promise<IndexerScoreOutputs & { dispatch: IndexerDispatchReport }> {
  checkImplementation(problem.fn, implementation);
  if (implementation === 'reference') return { ...(await referenceIndexer(backend, inputs, problem)), dispatch: { implementation: 'reference' } };
  if (implementation === 'composed') {
    return { ...(await composedIndexer(backend, inputs, problem)), dispatch: { implementation: 'composed', declined: "implementation: 'composed' was requested" } };
  }
  const declined: string[] = [];
  for (const kernel of FUSED_INDEXER_KERNELS) {
    const support = kernel.supports(backend, inputs, problem);
    if (support.ok) {
      const dispatch = declined.length > 0 ? { implementation: `fused:${kernel.name}`, declined: declined.join('; ') } : { implementation: `fused:${kernel.name}` };
      return { ...(await kernel.run(backend, inputs, problem)), dispatch };
    }
    declined.push(`${kernel.name}: ${support.reason}`);
  }
  const why = declined.join('; ');
  if (implementation === 'fused') {
    throw new ConfigError({ fn: problem.fn, expected: "a fused indexer kernel that accepts these inputs (or implementation 'auto')", got: `none: ${why}` });
  }
  return { ...(await composedIndexer(backend, inputs, problem)), dispatch: { implementation: 'composed', declined: why } };
}

const IMPLEMENTATIONS: readonly IndexerImplementation[] = ['auto', 'fused', 'composed', 'reference'];

/** Throws ConfigError unless `implementation` is one the indexer knows. */
export function checkImplementation(fn: string, implementation: unknown): void {
  if (!IMPLEMENTATIONS.some((i) => i === implementation)) {
    throw new ConfigError({ fn, expected: `indexer implementation ${IMPLEMENTATIONS.map((i) => `'${i}'`).join(', ')}`, got: String(implementation) });
  }
}

/** `implementation: 'reference'`: reads every input to the host (debugging and tests only). */
async function referenceIndexer(backend: Backend, inputs: IndexerScoreInputs, p: IndexerScoreProblem): Promise<IndexerScoreOutputs> {
  const { B, S, T, heads, headDim } = p;
  using rows = await slice(inputs.keys, [0, 0, 0, 0], [B, T, 1, headDim]); // [B, T, 1, D_I]
  using wide = rows.dtype === 'f32' ? reshape(rows, rows.shape) : await cast(rows, 'f32');
  const [q, weights, keys] = await Promise.all([inputs.q.data(), inputs.weights.data(), wide.data()]);
  const out = indexerReference({ q, weights, keys, B, S, heads, headDim, T, lengths: p.lengths, topk: p.topk });
  const indices = tensor(backend, out.indices, [B, S, 1, out.K], { dtype: 'i32' });
  return { indices, scores: p.keepScores ? tensor(backend, out.scores, [B, S, T]) : null };
}
