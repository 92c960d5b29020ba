import { CpuBackend } from '@attnkit/tensor-core';
import { describe, expect, it } from 'vitest';
import { heatmapPixels, rowNormalised, viridis, visibleRange } from './heatmap.js';
import { denseScores, headSlice, validateInput } from './scores.js';

describe('denseScores', () => {
  it('GQA input: probabilities are a masked softmax of the logits, and P·V equals attention()', async () => {
    const backend = new CpuBackend();
    const S = 12;
    const H = 4;
    const r = await denseScores(backend, { seqLen: S, heads: H, kvHeads: 2, headDim: 8, causal: true, seed: 3 });
    expect(r.probs).toHaveLength(H * S * S);
    expect(r.maxAbsDiff).toBeLessThan(1e-5);
    // float64 softmax of the logits the page shows, row by row, masked bottom-right
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < S; i++) {
        const row = Array.from(r.logits.subarray((h * S + i) * S, (h * S + i + 1) * S));
        const visible = row.map((_, t) => t <= i);
        const max = Math.max(...row.filter((_, t) => visible[t]));
        const exps = row.map((x, t) => (visible[t] ? Math.exp(x - max) : 0));
        const sum = exps.reduce((a, b) => a + b, 0);
        for (let t = 0; t < S; t++) {
          expect(r.probs[(h * S + i) * S + t]).toBeCloseTo((exps[t] as number) / sum, 6);
          expect(r.visible[i * S + t]).toBe(visible[t] ? 1 : 0);
        }
      }
    }
    expect(backend.memory()).toEqual({ bytesAllocated: 0, liveBuffers: 0, liveTensors: 0 });
    await backend.dispose();
  });

  it('non-causal MQA input sees every key', async () => {
    const backend = new CpuBackend();
    const r = await denseScores(backend, { seqLen: 6, heads: 3, kvHeads: 1, headDim: 4, causal: false, seed: 1 });
    expect(Array.from(r.visible).every((x) => x === 1)).toBe(true);
    expect(r.maxAbsDiff).toBeLessThan(1e-5);
    const head0 = headSlice(r.probs, 0, 6, 6);
    for (let i = 0; i < 6; i++) expect(head0.subarray(i * 6, i * 6 + 6).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    await backend.dispose();
  });

  it('the same seed gives the same picture', async () => {
    const backend = new CpuBackend();
    const input = { seqLen: 5, heads: 2, kvHeads: 2, headDim: 4, causal: true, seed: 11 };
    const a = await denseScores(backend, input);
    const b = await denseScores(backend, input);
    expect(Array.from(a.probs)).toEqual(Array.from(b.probs));
    await backend.dispose();
  });

  it('rejects inputs it cannot draw', async () => {
    expect(validateInput({ seqLen: 4, heads: 3, kvHeads: 2, headDim: 4, causal: true, seed: 0 })).toMatch(/multiple of kv heads/);
    expect(validateInput({ seqLen: 4, heads: 2, kvHeads: 2, headDim: 5, causal: true, seed: 0 })).toMatch(/even/);
    expect(validateInput({ seqLen: 0, heads: 2, kvHeads: 2, headDim: 4, causal: true, seed: 0 })).toMatch(/positive/);
    const backend = new CpuBackend();
    await expect(denseScores(backend, { seqLen: 4, heads: 3, kvHeads: 2, headDim: 4, causal: true, seed: 0 })).rejects.toThrow(RangeError);
    await backend.dispose();
  });
});

describe('heatmap colours', () => {
  it('runs viridis from dark purple to yellow, clamped', () => {
    expect(viridis(0)).toEqual([68, 1, 84]);
    expect(viridis(1)).toEqual([253, 231, 37]);
    expect(viridis(-3)).toEqual(viridis(0));
    expect(viridis(Number.NaN)).toEqual(viridis(0));
  });

  it('row normalisation divides each row by its largest visible value', () => {
    const values = Float32Array.from([0.5, 0.25, 9, 0.2, 0.8, 0]);
    const visible = Uint8Array.from([1, 1, 0, 1, 1, 1]);
    expect(Array.from(rowNormalised(values, visible, 2, 3))).toEqual([1, 0.5, 18, 0.25, 1, 0]);
  });

  it('scales over visible cells only and greys out masked ones', () => {
    const values = Float32Array.from([0, -100, 1, 2]);
    const visible = Uint8Array.from([1, 0, 1, 1]);
    const range = visibleRange(values, visible);
    expect(range).toEqual({ min: 0, max: 2 });
    const px = heatmapPixels(values, visible, range);
    expect(Array.from(px.subarray(0, 4))).toEqual([68, 1, 84, 255]);
    expect(Array.from(px.subarray(4, 8))).toEqual([226, 226, 230, 255]);
    expect(Array.from(px.subarray(12, 16))).toEqual([253, 231, 37, 255]);
  });
});
