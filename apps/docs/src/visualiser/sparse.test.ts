import { CpuBackend } from '@attnkit/tensor-core';
import { describe, expect, it } from 'vitest';
import { compressedSpanMask, keptProbability, windowMask } from './overlays.js';
import { makeInputs, denseScores } from './scores.js';
import { DEFAULT_SPARSE, dsaPicks, nsaPicks, validateSparse } from './sparse.js';

const INPUT = { seqLen: 29, heads: 4, kvHeads: 2, headDim: 8, causal: true, seed: 5 };

/** Half-split RoPE of one D-vector at position p, θ = 10 000, in float64. */
function rope(x: ArrayLike<number>, p: number): number[] {
  const D = x.length;
  const out = Array.from(x);
  for (let i = 0; i < D / 2; i++) {
    const angle = p / 10_000 ** ((2 * i) / D);
    const [a, b] = [x[i] as number, x[i + D / 2] as number];
    out[i] = a * Math.cos(angle) - b * Math.sin(angle);
    out[i + D / 2] = b * Math.cos(angle) + a * Math.sin(angle);
  }
  return out;
}

describe('nsaPicks', () => {
  it("selects min(n, ⌊i/l′⌋ + 1) blocks per query, the forced ones included, cut at the query", async () => {
    const backend = new CpuBackend();
    const { seqLen: S, heads: H, kvHeads: Hkv } = INPUT;
    const r = await nsaPicks(backend, INPUT);
    const { slcBlock: lp, nSelected: n, window: w } = DEFAULT_SPARSE;
    expect(r.selectedBlocks).toHaveLength(S * Hkv * n);
    for (let i = 0; i < S; i++) {
      const own = Math.floor(i / lp);
      const blocks = Math.min(n, own + 1);
      for (let g = 0; g < Hkv; g++) {
        const picked = Array.from(r.selectedBlocks.subarray((i * Hkv + g) * n, (i * Hkv + g + 1) * n)).filter((b) => b >= 0);
        expect(new Set(picked).size).toBe(blocks);
        expect(picked.every((b) => b <= own)).toBe(true);
        for (const forced of [0, own, own - 1]) if (forced >= 0) expect(picked).toContain(forced);
      }
      // every selected block but the query's own is whole
      for (let h = 0; h < H; h++) expect(r.selected.rowCounts[h * S + i]).toBe((blocks - 1) * lp + (i % lp) + 1);
      expect(r.window.rowCounts[i]).toBe(Math.min(w, i + 1));
    }
    for (const g of r.gates) expect(g > 0 && g < 1).toBe(true);
    expect(r.gates).toHaveLength(S * H * 3);
    expect(backend.memory()).toEqual({ bytesAllocated: 0, liveBuffers: 0, liveTensors: 0 });
    await backend.dispose();
  });
});

describe('dsaPicks', () => {
  it('keeps the min(topk, i + 1) keys with the largest Σ_j ReLU(q_j·k_t), k = LayerNorm(mean of the kv heads)', async () => {
    const backend = new CpuBackend();
    const { seqLen: S, heads: H, kvHeads: Hkv, headDim: D } = INPUT;
    const r = await dsaPicks(backend, INPUT);
    const K = DEFAULT_SPARSE.topk;
    expect(r.picks.perHead).toBe(false);

    // float64: the indexer the docs describe, on the same host inputs
    const host = makeInputs(INPUT);
    const keys = Array.from({ length: S }, (_, t) => {
      const mean = Array.from({ length: D }, (_, d) => {
        let s = 0;
        for (let g = 0; g < Hkv; g++) s += host.k[(t * Hkv + g) * D + d] as number;
        return s / Hkv;
      });
      const mu = mean.reduce((a, b) => a + b, 0) / D;
      const variance = mean.reduce((a, b) => a + (b - mu) ** 2, 0) / D;
      return rope(mean.map((x) => (x - mu) / Math.sqrt(variance + 1e-6)), t);
    });
    for (let i = 0; i < S; i++) {
      const queries = Array.from({ length: H }, (_, j) => rope(host.q.subarray((i * H + j) * D, (i * H + j + 1) * D), i));
      const scores = keys.slice(0, i + 1).map((k) => queries.reduce((sum, q) => sum + Math.max(0, q.reduce((a, x, d) => a + x * (k[d] as number), 0)), 0));
      const picked = Array.from({ length: S }, (_, t) => t).filter((t) => r.picks.selected[i * S + t] === 1);
      expect(picked.length).toBe(Math.min(K, i + 1));
      expect(r.picks.rowCounts[i]).toBe(Math.min(K, i + 1));
      // every pick scores at least as high as every key left out (to f32 rounding)
      const worstPicked = Math.min(...picked.map((t) => scores[t] as number));
      const bestLeft = Math.max(-Infinity, ...scores.filter((_, t) => !picked.includes(t)));
      expect(worstPicked).toBeGreaterThanOrEqual(bestLeft - 1e-4 * Math.abs(bestLeft));
    }
    expect(backend.memory()).toEqual({ bytesAllocated: 0, liveBuffers: 0, liveTensors: 0 });
    await backend.dispose();
  });

  it('a top-k covering every key keeps all of the causal attention', async () => {
    const backend = new CpuBackend();
    const input = { ...INPUT, seqLen: 12 };
    const [dense, picks] = await Promise.all([denseScores(backend, input), dsaPicks(backend, input, { ...DEFAULT_SPARSE, topk: 64 })]);
    for (let h = 0; h < input.heads; h++) expect(keptProbability(dense.probs, picks.picks, h, 12, 12)).toBeCloseTo(1, 5);
    await backend.dispose();
  });
});

describe('overlay masks', () => {
  it('window and compressed span', () => {
    expect(Array.from(windowMask(4, 2))).toEqual([1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 1, 1]);
    // l = 4, d = 2: block 0 complete at i = 3 (keys 0–3), block 1 at i = 5 (keys 0–5)
    const span = compressedSpanMask(6, 4, 2);
    const rows = Array.from({ length: 6 }, (_, i) => Array.from(span.subarray(i * 6, i * 6 + 6)).reduce((a, b) => a + b, 0));
    expect(rows).toEqual([0, 0, 0, 4, 4, 6]);
  });

  it('rejects NSA geometry the layer would refuse', () => {
    expect(validateSparse(INPUT, { ...DEFAULT_SPARSE, slcBlock: 6 })).toMatch(/multiples of d/);
    expect(validateSparse(INPUT, { ...DEFAULT_SPARSE, nSelected: 2 })).toMatch(/at least 3/);
    expect(validateSparse(INPUT, { ...DEFAULT_SPARSE, topk: 0 })).toMatch(/positive/);
  });
});
