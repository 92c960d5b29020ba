// What every implementation of the indexer's scoring and selection receives (spec §3 steps 5–6),
// in the style of the attention core's fused-kernel contract: the tensors of one call, the
// validated problem, and `supports()` returning the reason a fused kernel declines.
//
// Axis letters: B batch, S queries, T logical keys (the longest sequence), H_I indexer heads,
// D_I indexer head dim, K picks per query.

import type { Backend, Tensor } from '@attnkit/tensor-core';

export type IndexerImplementation = 'auto' | 'fused' | 'composed' | 'reference';

export interface IndexerScoreInputs {
  /** f32 [B, S, H_I, D_I]: the indexer queries, rotated (fp8 precision: rotated, quantised and dequantised). */
  readonly q: Tensor;
  /** f32 [B, S, H_I]: head weights w_j = weights_proj(x)_j · H_I^−1/2 · D_I^−1/2. */
  readonly weights: Tensor;
  /** [B, Tcap, 1, D_I] cached keys in any storage dtype (IndexerKeyCache's view); rows past T are not read. */
  readonly keys: Tensor;
}

export interface IndexerScoreProblem {
  /** The public function that was called, for error messages. */
  readonly fn: string;
  readonly B: number;
  readonly S: number;
  readonly heads: number;
  readonly headDim: number;
  /** Longest sequence: the score rows are [T] wide. */
  readonly T: number;
  /** Keys per sequence; the S queries end each sequence (query i of b sits at lengths[b] − S + i). */
  readonly lengths: readonly number[];
  /** Picks per query, min(index_topk, T). */
  readonly topk: number;
  /** Also return the scores [B, S, T]. */
  readonly keepScores: boolean;
  readonly signal: AbortSignal | undefined;
}

export interface IndexerScoreOutputs {
  /**
   * i32 [B, S, 1, K]: each query's picks, best first. A query that sees fewer than K keys has
   * padding after its picks: −1 or a key it cannot see (sparse attention ignores both).
   */
  readonly indices: Tensor;
  /** f32 [B, S, T]: I[p, t], −∞ where t is not visible to the query. Null unless asked for. */
  readonly scores: Tensor | null;
}

export type KernelSupport = { readonly ok: true } | { readonly ok: false; readonly reason: string };

export interface FusedIndexerKernel {
  /** Short stable name, reported as `fused:<name>`. */
  readonly name: string;
  supports(backend: Backend, inputs: IndexerScoreInputs, problem: IndexerScoreProblem): KernelSupport;
  run(backend: Backend, inputs: IndexerScoreInputs, problem: IndexerScoreProblem): Promise<IndexerScoreOutputs>;
}

/** Position of query i of sequence b: the S queries end each sequence. */
export function queryPosition(p: IndexerScoreProblem, b: number, i: number): number {
  return (p.lengths[b] ?? p.T) - p.S + i;
}
