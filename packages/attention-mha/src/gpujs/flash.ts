// The fused attention kernel for the gpu.js backends: an online softmax over key chunks, five
// launches per chunk (keys, scores, stats, probs, accumulate; see kernels/flash.gpujs.ts), the scores of
// one (query chunk × key chunk) block at most SCORE_BUDGET values, never S×T. GQA indexes kv
// head ⌊h/G⌋ inside the kernels; row maps, biases, lengths, windows with sinks, values read
// from the keys and both sparse forms are handled in the keys/scores kernels.

import { AbortCheckpoint, BackendError, type Tensor, concat, isQuantized, tensor, zeros } from '@attnkit/tensor-core';
import type { AttentionInputs, AttentionOutputs, AttentionProblem, FusedAttentionKernel } from '../problem.js';
import { type GpujsKernelHost, isGpujsKernelHost } from '@attnkit/tensor-core';
import {
  flashAccumulateKernel,
  flashFinishKernel,
  flashKeysKernel,
  flashLseKernel,
  flashProbsKernel,
  flashScoresKernel,
  flashStatsKernel,
  qdiv,
} from './kernels/flash.gpujs.js';

/** Most scores one block holds (16 MiB of f32): R rows × Tc key slots. */
const SCORE_BUDGET = 1 << 22;
/**
 * Query positions per chunk: short enough that causal prefill skips the key chunks past each
 * query chunk's diagonal, long enough to amortise the launches.
 */
const QUERY_CHUNK = 256;
const HELPERS = [qdiv];

export const gpujsFlashKernel: FusedAttentionKernel = {
  name: 'gpujs-flash',
  supports(backend, inputs) {
    if (!isGpujsKernelHost(backend)) return { ok: false, reason: `runs on the gpu.js backends with the kernel extension API only (this is ${backend.info.name})` };
    for (const t of [inputs.k, inputs.v]) {
      if (t && isQuantized(t.dtype)) return { ok: false, reason: `${t.dtype} K/V storage is read by the composed path (its gather decodes the blocks)` };
      if (t && t.size * 4 > backend.info.maxBindingBytes) return { ok: false, reason: `K/V of ${t.size * 4} bytes exceed one binding (${backend.info.maxBindingBytes})` };
    }
    return { ok: true };
  },
  async run(backend, inputs, p) {
    if (!isGpujsKernelHost(backend)) throw new BackendError({ fn: p.fn, expected: 'a gpu.js backend', got: backend.info.name });
    return runFlash(backend, inputs, p);
  },
};

async function runFlash(backend: GpujsKernelHost, inputs: AttentionInputs, p: AttentionProblem): Promise<AttentionOutputs> {
  const { B, S, Hq, Hkv, D, Dv, T } = p;
  const G = Hq / Hkv;
  const checkpoint = new AbortCheckpoint(p.signal, p.fn, 0);
  const keysK = backend.kernel('attention-mha/flash-keys', flashKeysKernel, {
    params: { sel: 'tensor', lens: 'tensor', S: 'int', Hq: 'int', G: 'int', Sc: 'int', i0: 'int', t0: 'int', causal: 'int', win: 'int', sinks: 'int', selKind: 'int', selW: 'int', selHeads: 'int', selG: 'int', blockSize: 'int' },
    functions: HELPERS,
    rank: 2,
  });
  const scoresK = backend.kernel('attention-mha/flash-scores', flashScoresKernel, {
    params: { q: 'tensor', k: 'tensor', keys: 'tensor', rowMap: 'tensor', bias: 'tensor', S: 'int', Hq: 'int', Hkv: 'int', G: 'int', D: 'int', T: 'int', Sc: 'int', i0: 'int', Tc: 'int', hasRowMap: 'int', hasBias: 'int', bB: 'int', bH: 'int', bS: 'int', bT: 'int', scale: 'float' },
    functions: HELPERS,
    rank: 2,
  });
  const statsK = backend.kernel('attention-mha/flash-stats', flashStatsKernel, { params: { ml: 'tensor', scores: 'tensor', Tc: 'int' }, rank: 2 });
  const probsK = backend.kernel('attention-mha/flash-probs', flashProbsKernel, { params: { scores: 'tensor', ml: 'tensor', Tc: 'int' }, rank: 2 });
  const accumulateK = backend.kernel('attention-mha/flash-accumulate', flashAccumulateKernel, {
    params: { acc: 'tensor', mlOld: 'tensor', mlNew: 'tensor', probs: 'tensor', keys: 'tensor', v: 'tensor', rowMap: 'tensor', Hq: 'int', Hkv: 'int', G: 'int', Dv: 'int', vW: 'int', T: 'int', Sc: 'int', Tc: 'int', hasRowMap: 'int' },
    functions: HELPERS,
    rank: 2,
  });
  const finishK = backend.kernel('attention-mha/flash-finish', flashFinishKernel, { params: { acc: 'tensor', ml: 'tensor', Dv: 'int' }, rank: 2 });
  const lseK = backend.kernel('attention-mha/flash-lse', flashLseKernel, { params: { ml: 'tensor' }, rank: 1 });

  // Small host-side inputs: lengths, the deduplicated selection, placeholders for unused slots.
  const sel = p.selection;
  using lens = tensor(backend, Float32Array.from(p.lengths), [B]);
  using selT = sel.kind === 'dense' ? tensor(backend, new Float32Array(1), [1]) : tensor(backend, dedupe(p), [sel.values.length]);
  using dummy = tensor(backend, new Float32Array(1), [1]);
  using rowMapT = p.rowMap ? tensor(backend, Float32Array.from(p.rowMap), [p.rowMap.length]) : null;
  const [Bb, Hb, Sb, Tb] = p.biasShape ?? [1, 1, 1, 1];
  const bias = { bB: Bb === 1 ? 0 : Hb * Sb * Tb, bH: Hb === 1 ? 0 : Sb * Tb, bS: Sb === 1 ? 0 : Tb, bT: Tb === 1 ? 0 : 1 };
  const v = inputs.v ?? inputs.k;
  const vW = inputs.v ? Dv : D;
  const slots = sel.kind === 'dense' ? T : sel.kind === 'indices' ? sel.width : sel.width * sel.blockSize;
  const Sc = Math.max(1, Math.min(S, QUERY_CHUNK));
  const Tc = Math.max(1, Math.min(slots, Math.floor(SCORE_BUDGET / (B * Sc * Hq))));

  const outs: Tensor[] = [];
  const lses: Tensor[] = [];
  try {
    for (let i0 = 0; i0 < S; i0 += Sc) {
      const sc = Math.min(Sc, S - i0);
      const R = B * sc * Hq;
      // softmax state: m = "nothing seen" (far below any score), l = 0, accumulators 0
      const init = new Float32Array(R * 2);
      for (let r = 0; r < R; r++) init[2 * r] = -3.0e38;
      let ml = tensor(backend, init, [R, 2]);
      let acc = zeros(backend, [R, Dv]);
      try {
        const end = sel.kind === 'dense' ? visibleEnd(p, i0 + sc) : slots;
        for (let t0 = sel.kind === 'dense' ? visibleStart(p, i0) : 0; t0 < end; t0 += Tc) {
          await checkpoint.check();
          const tc = Math.min(Tc, end - t0);
          const block = { grid: [tc, R] as const, shape: [R, tc] };
          using keys = await keysK.run(
            { sel: selT, lens, S, Hq, G, Sc: sc, i0, t0, causal: p.causal ? 1 : 0, win: p.window ?? 0, sinks: p.sinkTokens, selKind: sel.kind === 'dense' ? 0 : sel.kind === 'indices' ? 1 : 2, selW: sel.kind === 'dense' ? 0 : sel.width, selHeads: sel.kind !== 'dense' && sel.perHead ? Hkv : 1, selG: sel.kind !== 'dense' && sel.perHead ? 1 : 0, blockSize: sel.kind === 'blocks' ? sel.blockSize : 1 },
            block,
          );
          using scores = await scoresK.run(
            { q: inputs.q, k: inputs.k, keys, rowMap: rowMapT ?? dummy, bias: inputs.bias ?? dummy, S, Hq, Hkv, G, D, T, Sc: sc, i0, Tc: tc, hasRowMap: rowMapT ? 1 : 0, hasBias: inputs.bias ? 1 : 0, ...bias, scale: p.scale },
            block,
          );
          const mlNew = await statsK.run({ ml, scores, Tc: tc }, { grid: [2, R], shape: [R, 2] });
          try {
            using probs = await probsK.run({ scores, ml: mlNew, Tc: tc }, block);
            const accNew = await accumulateK.run(
              { acc, mlOld: ml, mlNew, probs, keys, v, rowMap: rowMapT ?? dummy, Hq, Hkv, G, Dv, vW, T, Sc: sc, Tc: tc, hasRowMap: rowMapT ? 1 : 0 },
              { grid: [Dv, R], shape: [R, Dv] },
            );
            acc.dispose();
            acc = accNew;
          } finally {
            ml.dispose();
            ml = mlNew;
          }
        }
        outs.push(await finishK.run({ acc, ml, Dv }, { grid: [Dv, R], shape: [B, sc, Hq, Dv] }));
        if (p.returnLse) lses.push(await lseK.run({ ml }, { grid: [R], shape: [B, sc, Hq] }));
      } finally {
        ml.dispose();
        acc.dispose();
      }
    }
    const out = await joinChunks(outs);
    try {
      return { out, lse: p.returnLse ? await joinChunks(lses) : null };
    } catch (error) {
      out.dispose();
      throw error;
    }
  } finally {
    [...outs, ...lses].forEach((t) => t.dispose());
  }
}

/** Query chunks joined along S; a single chunk is taken out of the list (the caller disposes the rest). */
async function joinChunks(chunks: Tensor[]): Promise<Tensor> {
  if (chunks.length === 1) {
    const only = chunks.pop();
    if (only) return only;
  }
  return concat(chunks, 1);
}

/** First key any query i ≥ i0 may see (0 with sinks or without a window). */
function visibleStart(p: AttentionProblem, i0: number): number {
  const window = p.window;
  if (!p.causal || window === null || p.sinkTokens > 0) return 0;
  return Math.max(0, Math.min(...p.lengths.map((len) => len - p.S + i0 - window + 1)));
}

/** One past the last key a query before i1 may see. */
function visibleEnd(p: AttentionProblem, i1: number): number {
  return Math.max(0, ...p.lengths.map((len) => (p.causal ? Math.min(len, len - p.S + i1) : len)));
}

/** The selection with repeated entries of a list set to −1 (sparse lists are sets). */
function dedupe(p: AttentionProblem): Float32Array {
  const sel = p.selection;
  if (sel.kind === 'dense') return new Float32Array(0);
  const out = Float32Array.from(sel.values);
  for (let base = 0; base < out.length; base += sel.width) {
    const seen = new Set<number>();
    for (let j = 0; j < sel.width; j++) {
      const x = out[base + j] as number;
      if (x < 0) continue;
      if (seen.has(x)) out[base + j] = -1;
      else seen.add(x);
    }
  }
  return out;
}

