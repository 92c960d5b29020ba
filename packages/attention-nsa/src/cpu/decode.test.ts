// The CPU fused decode step on its worker threads: a step long enough that both of its phases go
// over the threads (≥ 8 Mi multiply-adds each: two sequences of ~20K tokens, the paper's head
// dims), against the composed step on the same backend. The shorter cases of
// webgpu/nsa-decode.test.ts run on the calling thread.
import { CpuBackend, tensor } from '@attnkit/tensor-core';
import { SeededRandom, compareArrays } from '@attnkit/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { compressBlocks } from '../compress.js';
import { resolveNSAConfig } from '../config.js';
import { nativeSparseAttention } from '../nsa.js';

describe('cpu-nsa-decode on the worker threads', () => {
  const backend = new CpuBackend();
  afterAll(async () => {
    await backend.dispose();
  });

  it('equals the composed step for two long sequences (both phases handed off)', async () => {
    expect(backend.wasmThreads?.size ?? 1, 'a backend with worker threads').toBeGreaterThan(1);
    const config = resolveNSAConfig({ nHeads: 16, nKvHeads: 1, headDim: 192, vHeadDim: 128, gateDim: 32 });
    const lengths = [20000, 17003];
    const T = 20000;
    const rng = new SeededRandom(21);
    const up = (shape: readonly number[], scale = 1) => tensor(backend, rng.normalArray(shape.reduce((a, b) => a * b, 1), scale), shape);
    const q = up([2, 1, 16, 192]);
    const k = up([2, T, 1, 192]);
    const v = up([2, T, 1, 128]);
    const x = up([2, 1, 32]);
    const weights = { gateWeight: up([48, 32], 0.3), gateBias: up([48], 0.5) };
    const keys = await compressBlocks(k, { kind: 'mean', pe: null, mlp: null }, config);
    const values = await compressBlocks(v, { kind: 'mean', pe: null, mlp: null }, config);
    try {
      const step = async (implementation: 'fused' | 'composed') => {
        const { out, dispatch } = await nativeSparseAttention(q, k, v, x, config, weights, { kvLengths: lengths, compressed: { keys, values }, implementation });
        const data = await out.data();
        out.dispose();
        return { data, implementation: dispatch.selected.implementation };
      };
      const fused = await step('fused');
      const composed = await step('composed');
      expect(fused.implementation).toBe('fused:cpu-nsa-decode');
      const cmp = compareArrays(fused.data, composed.data, { atol: 2e-5, rtol: 2e-5 });
      expect(cmp.pass, cmp.message).toBe(true);
    } finally {
      for (const t of [q, k, v, x, weights.gateWeight, weights.gateBias, keys, values]) t.dispose();
    }
    expect(backend.wasm?.liveBytes(), 'heap regions released').toBe(backend.wasm?.residentBytes());
    expect(backend.memory().liveTensors).toBe(0);
  });
});
