// The fused indexer for the gpu.js backends: one launch per query chunk computes the scores
// block [B·Sc, T] (scores.gpujs.ts), tensor-core's `topK` picks from it. Against the composed
// path it skips the [B, Sc·H_I, T] logits, the ReLU pass and the head-weight product.
//
// Axis letters: B batch, S queries (Sc per chunk), T keys, H_I heads, D_I head dim, K picks.

import { AbortCheckpoint, BackendError, type Tensor, add, cast, concat, reshape, slice, tensor, topK } from '@attnkit/tensor-core';
import { type FusedIndexerKernel, type IndexerScoreProblem, queryPosition } from '../problem.js';
import { type GpujsKernelHost, isGpujsKernelHost } from '@attnkit/tensor-core';
import { idiv, indexerScoresKernel, scoreIsNan } from './scores.gpujs.js';

/** Most scores one launch produces (16 MiB of f32). */
const SCORE_BUDGET = 1 << 22;

export const gpujsIndexerKernel: FusedIndexerKernel = {
  name: 'gpujs-indexer',
  supports(backend, inputs, p) {
    if (!isGpujsKernelHost(backend)) return { ok: false, reason: `runs on the gpu.js backends with the kernel extension API only (this is ${backend.info.name})` };
    const keyBytes = p.B * p.T * p.headDim * 4;
    if (keyBytes > backend.info.maxBindingBytes) return { ok: false, reason: `keys of ${keyBytes} bytes exceed one binding (${backend.info.maxBindingBytes})` };
    if (inputs.q.size * 4 > backend.info.maxBindingBytes) return { ok: false, reason: `queries of ${inputs.q.size * 4} bytes exceed one binding` };
    return { ok: true };
  },
  async run(backend, inputs, p) {
    if (!isGpujsKernelHost(backend)) throw new BackendError({ fn: p.fn, expected: 'a gpu.js backend', got: backend.info.name });
    return runIndexer(backend, inputs.q, inputs.weights, inputs.keys, p);
  },
};

async function runIndexer(backend: GpujsKernelHost, q: Tensor, weights: Tensor, cachedKeys: Tensor, p: IndexerScoreProblem): Promise<{ indices: Tensor; scores: Tensor | null }> {
  const { B, S, T, heads: HI, headDim: DI, topk: K } = p;
  const scoresK = backend.kernel('indexer-dsa/scores', indexerScoresKernel, {
    params: { q: 'tensor', w: 'tensor', k: 'tensor', lens: 'tensor', S: 'int', HI: 'int', DI: 'int', T: 'int', i0: 'int', Sc: 'int' },
    functions: [idiv, scoreIsNan],
    rank: 2,
  });
  // Keys as dense f32 [B, T, D_I]: cut to the longest sequence, 16-bit or fp8 storage decoded once.
  using rows = (cachedKeys.shape[1] ?? 0) > T ? await slice(cachedKeys, [0, 0, 0, 0], [B, T, 1, DI]) : reshape(cachedKeys, cachedKeys.shape);
  using keys = rows.dtype === 'f32' ? reshape(rows, rows.shape) : await cast(rows, 'f32');
  using lens = tensor(backend, Float32Array.from(p.lengths), [B]);
  const chunk = Math.max(1, Math.min(S, Math.floor(SCORE_BUDGET / Math.max(1, B * T))));
  const checkpoint = new AbortCheckpoint(p.signal, p.fn, 0);
  const picks: Tensor[] = [];
  const kept: Tensor[] = [];
  try {
    for (let i0 = 0; i0 < S; i0 += chunk) {
      await checkpoint.check();
      const Sc = Math.min(chunk, S - i0);
      using qc = Sc === S ? reshape(q, q.shape) : await slice(q, [0, i0, 0, 0], [B, Sc, HI, DI]); // [B, Sc, H_I, D_I]
      using wc = Sc === S ? reshape(weights, weights.shape) : await slice(weights, [0, i0, 0], [B, Sc, HI]); // [B, Sc, H_I]
      const raw = await scoresK.run({ q: qc, w: wc, k: keys, lens, S, HI, DI, T, i0, Sc }, { grid: [T, B * Sc], shape: [B, Sc, T] }); // [B, Sc, T], NEG where hidden
      try {
        const top = await topK(raw, K); // [B, Sc, K]
        top.values.dispose();
        picks.push(top.indices);
        if (p.keepScores) kept.push(await hiddenToMinusInfinity(backend, raw, p, i0, Sc));
      } finally {
        raw.dispose();
      }
    }
    using indices = picks.length === 1 ? reshape(picks[0] as Tensor, [B, S, K]) : await concat(picks, 1); // [B, S, K]
    const out = reshape(indices, [B, S, 1, K]);
    try {
      const scores = !p.keepScores ? null : kept.length === 1 ? reshape(kept[0] as Tensor, [B, S, T]) : await concat(kept, 1);
      return { indices: out, scores };
    } catch (error) {
      out.dispose();
      throw error;
    }
  } finally {
    for (const t of [...picks, ...kept]) t.dispose();
  }
}

/** The exposed scores: −∞ (not the kernel's NEG) where a key is hidden, as the contract says. */
async function hiddenToMinusInfinity(backend: GpujsKernelHost, raw: Tensor, p: IndexerScoreProblem, i0: number, Sc: number): Promise<Tensor> {
  const { B, T } = p;
  const mask = new Float32Array(B * Sc * T).fill(-Infinity);
  for (let b = 0; b < B; b++) for (let c = 0; c < Sc; c++) mask.fill(0, (b * Sc + c) * T, (b * Sc + c) * T + queryPosition(p, b, i0 + c) + 1);
  using m = tensor(backend, mask, [B, Sc, T]);
  return await add(raw, m);
}
