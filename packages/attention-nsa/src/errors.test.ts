// Bad input at every boundary: named errors with what was expected and what came, nothing
// leaked, a cache left unchanged by a refused call.
import { AbortedError, BackendError, CapacityError, ConfigError, CpuBackend, ShapeError, type Tensor, tensor, zeros } from '@attnkit/tensor-core';
import { SeededRandom } from '@attnkit/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { NativeSparseAttention } from './layer.js';
import { nativeSparseAttention } from './nsa.js';
import type { NSAWeights } from './weights.js';
import { NSACache } from '@attnkit/kvcache';

const CONFIG = { nHeads: 4, nKvHeads: 2, headDim: 8, gateDim: 6, cmpBlock: 8, cmpStride: 4, slcBlock: 8, nSelected: 3, nInit: 1, nLocal: 1, window: 8 } as const;

describe('NativeSparseAttention boundary checks', () => {
  let backend: CpuBackend;
  let owned: Tensor[];
  let rng: SeededRandom;
  const rand = (shape: readonly number[]): Tensor => {
    const t = tensor(backend, rng.normalArray(shape.reduce((a, b) => a * b, 1)), shape);
    owned.push(t);
    return t;
  };
  const weights = (): NSAWeights => ({ gateWeight: rand([12, 6]), gateBias: rand([12]) });

  beforeEach(() => {
    backend = new CpuBackend();
    owned = [];
    rng = new SeededRandom(7);
  });
  afterEach(async () => {
    for (const t of owned) t.dispose();
    const { liveBuffers, liveTensors } = backend.memory();
    expect({ liveBuffers, liveTensors }, 'nothing leaks, errors included').toEqual({ liveBuffers: 0, liveTensors: 0 });
    await backend.dispose();
  });

  it('rejects weights of the wrong shape or kind', () => {
    expect(() => new NativeSparseAttention(CONFIG, { gateWeight: rand([4, 6]), gateBias: null })).toThrow(ShapeError);
    expect(() => new NativeSparseAttention(CONFIG, { gateWeight: rand([12, 6]), gateBias: null })).not.toThrow();
    expect(() => new NativeSparseAttention(CONFIG, { ...weights(), keyPE: rand([2, 4, 8]) })).toThrow(/keyPE of shape \[2, 8, 8\], got \[2, 4, 8\]/);
    expect(() => new NativeSparseAttention({ ...CONFIG, phi: 'mlp' }, weights())).toThrow(ConfigError);
    const mlp = { w1: rand([5, 64]), w2: rand([8, 5]) };
    expect(() => new NativeSparseAttention(CONFIG, { ...weights(), keyMLP: mlp, valueMLP: mlp })).toThrow(/no compressor MLP with phi 'mean'/);
    expect(() => new NativeSparseAttention({ ...CONFIG, phi: 'mlp' }, { ...weights(), keyMLP: mlp, valueMLP: { w1: rand([5, 63]), w2: rand([8, 5]) } })).toThrow(
      /valueMLP\.w1 of shape \[5, 64\], got \[5, 63\]/,
    );
    expect(() => new NativeSparseAttention({ ...CONFIG, cmpBlock: 6 }, weights())).toThrow(ConfigError);
  });

  it('rejects inputs that do not match the config', async () => {
    const nsa = new NativeSparseAttention(CONFIG, weights());
    const k = rand([1, 20, 2, 8]);
    const v = rand([1, 20, 2, 8]);
    await expect(nsa.forward(rand([1, 20, 2, 8]), k, v, rand([1, 20, 6]))).rejects.toThrow(/q of shape \[B, S, 4, 8\], got \[1, 20, 2, 8\]/);
    await expect(nsa.forward(rand([1, 20, 4, 8]), k, rand([1, 20, 1, 8]), rand([1, 20, 6]))).rejects.toThrow(ShapeError);
    await expect(nsa.forward(rand([1, 20, 4, 8]), k, v, rand([1, 20, 5]))).rejects.toThrow(/gate input x of shape \[1, 20, 6\]/);
    await expect(nsa.forward(rand([1, 21, 4, 8]), k, v, rand([1, 21, 6]))).rejects.toThrow(/kvLengths\[0\] in \[21, 20\]/);
    await expect(nsa.forward(rand([1, 4, 4, 8]), k, v, rand([1, 4, 6]), { kvLengths: [3] })).rejects.toThrow(ShapeError);
    await expect(nsa.forward(rand([1, 4, 4, 8]), k, v, rand([1, 4, 6]), { queryChunk: 0 })).rejects.toThrow(ConfigError);
    // @ts-expect-error: not an implementation
    await expect(nsa.forward(rand([1, 1, 4, 8]), k, v, rand([1, 1, 6]), { implementation: 'fast' })).rejects.toThrow(/implementation 'auto', 'fused' or 'composed', got fast/);
    await expect(nsa.forward(rand([1, 4, 4, 8]), k, v, rand([1, 4, 6]), { implementation: 'fused' })).rejects.toThrow(/a fused decode step \(implementation: fused\), got 4 queries per sequence/);
    await expect(nsa.forward(rand([1, 1, 4, 8]), k, v, rand([1, 1, 6]), { implementation: 'fused', returnStages: true })).rejects.toThrow(/got returnStages asks/);
    const gone = rand([1, 4, 4, 8]);
    gone.dispose();
    await expect(nsa.forward(gone, k, v, rand([1, 4, 6]))).rejects.toThrow(BackendError);
  });

  it('needs the compressed blocks from the cache when keys are a row pool', async () => {
    const c = new NativeSparseAttention(CONFIG, weights()).config;
    const rowMap = tensor(backend, Int32Array.from({ length: 20 }, (_, i) => i), [1, 20], { dtype: 'i32' });
    owned.push(rowMap);
    await expect(nativeSparseAttention(rand([1, 4, 4, 8]), rand([20, 2, 8]), rand([20, 2, 8]), rand([1, 4, 6]), c, weights(), { rowMap })).rejects.toThrow(
      /compressed blocks from the cache when keys are a row pool/,
    );
    const few = { keys: zeros(backend, [1, 2, 2, 8]), values: zeros(backend, [1, 2, 2, 8]) };
    owned.push(few.keys, few.values);
    await expect(nativeSparseAttention(rand([1, 4, 4, 8]), rand([1, 20, 2, 8]), rand([1, 20, 2, 8]), rand([1, 4, 6]), c, weights(), { compressed: few })).rejects.toThrow(
      CapacityError,
    );
  });

  it('stops on an aborted signal', async () => {
    const nsa = new NativeSparseAttention(CONFIG, weights());
    const controller = new AbortController();
    controller.abort(new Error('user cancelled'));
    await expect(nsa.forward(rand([1, 4, 4, 8]), rand([1, 20, 2, 8]), rand([1, 20, 2, 8]), rand([1, 4, 6]), { signal: controller.signal })).rejects.toThrow(AbortedError);
  });

  it('leaves the cache unchanged when it refuses a call', async () => {
    const nsa = new NativeSparseAttention(CONFIG, weights());
    using cache = new NSACache(backend, { batchSize: 1, kvHeads: 2, keyDim: 8, valueDim: 8, blockLength: 8, blockStride: 4, compress: nsa.compress });
    const first = await nsa.forward(rand([1, 12, 4, 8]), rand([1, 12, 2, 8]), rand([1, 12, 2, 8]), rand([1, 12, 6]), { cache });
    first.out.dispose();
    expect(cache.lengths).toEqual([12]);
    await expect(nsa.forward(rand([1, 1, 4, 8]), rand([1, 2, 2, 8]), rand([1, 2, 2, 8]), rand([1, 1, 6]), { cache })).rejects.toThrow(
      /new k rows of shape \[1, 1, 2, 8\] \(one per query\)/,
    );
    await expect(nsa.forward(rand([1, 1, 4, 8]), rand([1, 1, 2, 8]), rand([1, 1, 2, 8]), rand([1, 1, 5]), { cache })).rejects.toThrow(ShapeError);
    await expect(nsa.forward(rand([1, 1, 4, 8]), rand([1, 1, 2, 8]), rand([1, 1, 2, 8]), rand([1, 1, 6]), { cache, kvLengths: [13] })).rejects.toThrow(ConfigError);
    expect(cache.lengths).toEqual([12]);
  });
});
