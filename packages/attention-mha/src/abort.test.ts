// Aborts land between tiles and chunks and release everything: the attention core (fused and
// composed) and the MultiHeadAttention layer with a cache are stopped at each of their first
// checkpoints in turn (a signal that fires on its n-th read), on every backend. Each stopped
// call throws AbortedError, leaves the backend's live tensors and buffers as they were, and the
// layer's cache holds exactly the tokens it held before.
import { ContiguousKVCache } from '@attnkit/kvcache';
import { type Tensor, tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { abortEverywhere, describeEachBackend, SeededRandom } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { attention } from './attention.js';
import { resolveAttentionConfig } from './layer/config.js';
import { MultiHeadAttention } from './layer/multi-head-attention.js';
import { randomLayerWeights } from './testing/layer-reference.js';

const { available } = await availableBackends();

describeEachBackend(available, (name) => `aborts on ${name}`, (getBackend) => {
  // D = 6 keeps the WGSL kernel out (it needs multiples of 4; its chunked prefill is stopped at
  // each checkpoint in webgpu-flash.test.ts): on WebGPU 'auto' is the gpu.js flash kernel.
  for (const implementation of ['auto', 'composed'] as const) {
    it(`attention (${implementation}) stops between tiles and releases what it allocated`, async () => {
      const backend = getBackend();
      const rng = new SeededRandom(3);
      const S = 300;
      using q = tensor(backend, rng.normalArray(S * 4 * 6), [1, S, 4, 6]);
      using k = tensor(backend, rng.normalArray(S * 2 * 6), [1, S, 2, 6]);
      const midway = await abortEverywhere(backend, 6, async (signal) => {
        const r = await attention(q, k, k, { signal, implementation });
        r.out.dispose();
      });
      expect(midway, 'some aborts landed after the first checkpoint').toBeGreaterThan(0);
    });
  }

  it('MultiHeadAttention.forward with a cache stops, releases, and takes its rows back out', async () => {
    const backend = getBackend();
    const rng = new SeededRandom(4);
    const config = { dim: 16, nHeads: 4, rope: { layout: 'halfsplit' as const } };
    const weights = randomLayerWeights(backend, resolveAttentionConfig('test', { ...config, nKvHeads: 4 }), rng);
    try {
      const layer = new MultiHeadAttention(config, weights.record);
      using cache = new ContiguousKVCache(backend, { batchSize: 1, kvHeads: 4, keyDim: 4 });
      using prompt = tensor(backend, rng.normalArray(5 * 16), [1, 5, 16]);
      (await layer.forward(prompt, { cache })).dispose();
      const held = await readCache(cache);
      using x = tensor(backend, rng.normalArray(200 * 16), [1, 200, 16]);
      const midway = await abortEverywhere(
        backend,
        6,
        async (signal) => {
          const y = await layer.forward(x, { cache, signal });
          y.dispose();
          cache.truncate(5);
        },
        async () => expect(await readCache(cache)).toEqual(held),
      );
      expect(midway).toBeGreaterThan(0);
    } finally {
      weights.dispose();
    }
  });
});

async function readCache(cache: ContiguousKVCache): Promise<{ lengths: readonly number[]; keys: number[] }> {
  const keys: Tensor = await cache.readKeys();
  try {
    return { lengths: cache.lengths, keys: Array.from(await keys.data()) };
  } finally {
    keys.dispose();
  }
}
