// The fused CPU indexer kernel: scores and top-k in one pass over each query's visible keys,
// straight from the backend's arrays. Per query it holds one score row [T] and never an
// [S, T] block (unless the caller keeps the scores), and its top-k is a quickselect, so a
// decode step costs O(T·H_I·D_I + T) — linear in the context, like the math.
//
// Axis letters: B batch, S queries, T keys, H_I heads, D_I head dim, K picks.

import { BackendError, type CpuStorage, decodeRange, isCpuBackend } from '@attnkit/tensor-core';
import { AbortCheckpoint } from './checkpoint.js';
import { type FusedIndexerKernel, type IndexerScoreProblem, queryPosition } from './problem.js';
import { topKInto } from './top-k.js';

export const cpuIndexerKernel: FusedIndexerKernel = {
  name: 'cpu-indexer',
  supports(backend) {
    return isCpuBackend(backend) ? { ok: true } : { ok: false, reason: `runs on the cpu backend only (this is ${backend.info.name})` };
  },
  async run(backend, inputs, problem) {
    if (!isCpuBackend(backend)) throw new BackendError({ fn: problem.fn, expected: 'the cpu backend', got: backend.info.name });
    const { B, S, T, topk: K } = problem;
    const indices = new Int32Array(B * S * K).fill(-1);
    const scores = problem.keepScores ? new Float32Array(B * S * T).fill(-Infinity) : null;
    await scoreAndSelect(problem, {
      q: backend.view(inputs.q),
      weights: backend.view(inputs.weights),
      keys: backend.storageOf(inputs.keys),
      keyRows: inputs.keys.shape[1] ?? 0,
      indices,
      scores,
    });
    return {
      indices: backend.adopt({ dtype: 'i32', data: indices }, [B, S, 1, K]),
      scores: scores ? backend.wrap(scores, [B, S, T]) : null,
    };
  },
};

interface HostArrays {
  /** [B, S, H_I, D_I] */
  readonly q: Float32Array;
  /** [B, S, H_I] */
  readonly weights: Float32Array;
  /** [B, Tcap, 1, D_I] in its storage dtype. */
  readonly keys: CpuStorage;
  /** Tcap */
  readonly keyRows: number;
  /** [B, S, K], −1 filled */
  readonly indices: Int32Array;
  /** [B, S, T], −∞ filled, or null */
  readonly scores: Float32Array | null;
}

async function scoreAndSelect(p: IndexerScoreProblem, a: HostArrays): Promise<void> {
  const { B, S, T, heads: HI, headDim: DI, topk: K } = p;
  const checkpoint = new AbortCheckpoint(p.signal, p.fn);
  const row = new Float32Array(T);
  const scratch = new Float32Array(T);
  // f32 keys are read in place; any other storage is decoded one row at a time.
  const decoded = a.keys.dtype === 'f32' ? null : new Float32Array(DI);
  const keyData = a.keys.dtype === 'f32' ? a.keys.data : decoded;
  if (!keyData) throw new BackendError({ fn: p.fn, expected: 'readable key storage', got: a.keys.dtype });
  const q = a.q;
  const w = a.weights;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < S; i++) {
      await checkpoint.check();
      const r = b * S + i;
      const visible = queryPosition(p, b, i) + 1; // keys 0..p
      const qBase = r * HI * DI;
      const wBase = r * HI;
      for (let t = 0; t < visible; t++) {
        const element = (b * a.keyRows + t) * DI; // row (b, t) of [B, Tcap, 1, D_I]
        let kBase = element;
        if (decoded) {
          decodeRange(a.keys, element, DI, decoded, 0);
          kBase = 0;
        }
        // I[p, t] = Σ_j w_j · ReLU(q_j · k_t)
        let score = 0;
        for (let j = 0; j < HI; j++) {
          const qj = qBase + j * DI;
          let dot = 0;
          for (let d = 0; d < DI; d++) dot += (q[qj + d] as number) * (keyData[kBase + d] as number);
          if (dot > 0) score += (w[wBase + j] as number) * dot;
        }
        row[t] = score;
      }
      if (a.scores) a.scores.set(row.subarray(0, visible), r * T);
      topKInto(row, visible, K, a.indices, r * K, scratch);
    }
  }
}
