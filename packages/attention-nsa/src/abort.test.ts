// NativeSparseAttention.forward stops at each of its first checkpoints in turn (a signal that
// fires on its n-th read: between query chunks and branches), on every backend: an
// AbortedError, every tensor released, the NSA cache holding exactly the tokens it held before.
import { NSACache } from '@attnkit/kvcache';
import { type Tensor, tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { abortEverywhere, describeEachBackend, SeededRandom } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { NativeSparseAttention } from './layer.js';

const { available } = await availableBackends();
const CONFIG = { nHeads: 4, nKvHeads: 2, headDim: 8, gateDim: 6, cmpBlock: 8, cmpStride: 4, slcBlock: 8, nSelected: 3, nInit: 1, nLocal: 1, window: 8 } as const;

describeEachBackend(available, (name) => `NSA aborts on ${name}`, (getBackend) => {
  it('a chunked prefill with a cache stops, releases, and takes its rows back out', async () => {
    const backend = getBackend();
    const rng = new SeededRandom(9);
    const owned: Tensor[] = [];
    const rand = (shape: readonly number[]): Tensor => {
      const t = tensor(backend, rng.normalArray(shape.reduce((a, b) => a * b, 1)), shape);
      owned.push(t);
      return t;
    };
    try {
      const nsa = new NativeSparseAttention(CONFIG, { gateWeight: rand([12, 6]), gateBias: rand([12]) });
      using cache = new NSACache(backend, { batchSize: 1, kvHeads: 2, keyDim: 8, valueDim: 8, blockLength: 8, blockStride: 4, compress: nsa.compress });
      (await nsa.forward(rand([1, 12, 4, 8]), rand([1, 12, 2, 8]), rand([1, 12, 2, 8]), rand([1, 12, 6]), { cache })).out.dispose();
      const held = async (): Promise<unknown> => {
        using keys = await cache.readKeys();
        return { lengths: cache.lengths, keys: Array.from(await keys.data()) };
      };
      const before = await held();
      const [q, k, v, x] = [rand([1, 96, 4, 8]), rand([1, 96, 2, 8]), rand([1, 96, 2, 8]), rand([1, 96, 6])];
      const midway = await abortEverywhere(
        backend,
        8,
        async (signal) => {
          (await nsa.forward(q, k, v, x, { cache, signal, queryChunk: 16 })).out.dispose();
          cache.truncate(12);
        },
        async () => expect(await held()).toEqual(before),
      );
      expect(midway).toBeGreaterThan(0);
    } finally {
      for (const t of owned) t.dispose();
    }
  });
});
