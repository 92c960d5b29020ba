// The composed indexer: scores and selection from tensor-core primitives, for any backend. The
// tensors stay on the device; only the visibility mask (built from positions the host already
// knows) is uploaded. Queries go in chunks so the logits block [B, Sc·H_I, T] stays under
// SCORE_BUDGET elements.
//
//   logits = q · kᵀ              [B, Sc·H_I, T]   (matmul; the key is shared by all heads: MQA-like)
//   I      = w · ReLU(logits)    [B, Sc, 1, T]    (relu, then a batched [1, H_I]·[H_I, T] product)
//   picks  = topK(I + mask, K)   [B, Sc, K]       (ties toward the lower index)
//
// Axis letters: B batch, S queries (Sc per chunk), T keys, H_I heads, D_I head dim, K picks.

import { AbortCheckpoint, type Backend, type Tensor, add, cast, concat, matmul, relu, reshape, slice, tensor, topK } from '@attnkit/tensor-core';
import { type IndexerScoreInputs, type IndexerScoreOutputs, type IndexerScoreProblem, queryPosition } from './problem.js';

/** Most logits one chunk may hold (16 MiB of f32). */
const SCORE_BUDGET = 1 << 22;

export async function composedIndexer(backend: Backend, inputs: IndexerScoreInputs, p: IndexerScoreProblem): Promise<IndexerScoreOutputs> {
  const { B, S, T, heads: HI, headDim: DI, topk: K } = p;
  using keys = await denseKeys(inputs.keys, p); // [B, T, D_I] f32
  const chunk = Math.max(1, Math.min(S, Math.floor(SCORE_BUDGET / Math.max(1, B * HI * T))));
  const checkpoint = new AbortCheckpoint(p.signal, p.fn, 0);
  const picks: Tensor[] = [];
  const kept: Tensor[] = [];
  try {
    for (let i0 = 0; i0 < S; i0 += chunk) {
      await checkpoint.check();
      const Sc = Math.min(chunk, S - i0);
      using qc = await slice(inputs.q, [0, i0, 0, 0], [B, Sc, HI, DI]); // [B, Sc, H_I, D_I]
      using qRows = reshape(qc, [B, Sc * HI, DI]); // [B, Sc·H_I, D_I]
      using logits = await matmul(qRows, keys, { transposeB: true }); // [B, Sc·H_I, T]
      using active = await relu(logits); // [B, Sc·H_I, T]
      using perHead = reshape(active, [B, Sc, HI, T]); // [B, Sc, H_I, T]
      using wc = await slice(inputs.weights, [0, i0, 0], [B, Sc, HI]); // [B, Sc, H_I]
      using wRows = reshape(wc, [B, Sc, 1, HI]); // [B, Sc, 1, H_I]
      using weighted = await matmul(wRows, perHead); // [B, Sc, 1, T]: Σ_j w_j · ReLU(q_j·k_t)
      using raw = reshape(weighted, [B, Sc, T]); // [B, Sc, T]
      using mask = visibilityMask(backend, p, i0, Sc); // [B, Sc, T] 0 / −∞, or null when every key is visible
      const scores = mask ? await add(raw, mask) : reshape(raw, raw.shape); // [B, Sc, T]
      try {
        const top = await topK(scores, K); // [B, Sc, K]
        top.values.dispose();
        picks.push(top.indices);
      } finally {
        if (p.keepScores) kept.push(scores);
        else scores.dispose();
      }
    }
    using indices = await join(picks); // [B, S, K]
    const out = reshape(indices, [B, S, 1, K]); // [B, S, 1, K]
    try {
      return { indices: out, scores: p.keepScores ? await join(kept) : null };
    } catch (error) {
      out.dispose();
      throw error;
    }
  } finally {
    for (const t of [...picks, ...kept]) t.dispose();
  }
}

/** The cached keys as dense f32 [B, T, D_I]: cut to the longest sequence, decoded if quantised. */
async function denseKeys(keys: Tensor, p: IndexerScoreProblem): Promise<Tensor> {
  const { B, T, headDim: DI } = p;
  using rows = (keys.shape[1] ?? 0) > T ? await slice(keys, [0, 0, 0, 0], [B, T, 1, DI]) : reshape(keys, keys.shape); // [B, T, 1, D_I]
  using wide = rows.dtype === 'f32' ? reshape(rows, rows.shape) : await cast(rows, 'f32'); // [B, T, 1, D_I] f32
  return reshape(wide, [B, T, DI]); // [B, T, D_I]
}

/** 0 where query i0+c of sequence b sees key t (t ≤ its position), −∞ elsewhere; null when nothing is hidden. */
function visibilityMask(backend: Backend, p: IndexerScoreProblem, i0: number, Sc: number): Tensor | null {
  const { B, T } = p;
  // The chunk's first query has the fewest visible keys: if it sees all T in every sequence, so do the rest.
  let hidden = false;
  for (let b = 0; b < B; b++) hidden ||= queryPosition(p, b, i0) + 1 < T;
  if (!hidden) return null;
  const data = new Float32Array(B * Sc * T).fill(-Infinity);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < Sc; c++) data.fill(0, (b * Sc + c) * T, (b * Sc + c) * T + queryPosition(p, b, i0 + c) + 1);
  }
  return tensor(backend, data, [B, Sc, T]);
}

/** Chunks concatenated along S; a single chunk is taken out of the list (the caller disposes the rest). */
async function join(chunks: Tensor[]): Promise<Tensor> {
  if (chunks.length === 1) {
    const only = chunks.pop();
    if (only) return only;
  }
  return concat(chunks, 1);
}
