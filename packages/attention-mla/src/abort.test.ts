// MLA.forward stops at each of its first checkpoints in turn (a signal that fires on its n-th
// read), in both orders, on every backend: an AbortedError, every tensor released, the latent
// cache holding exactly the tokens it held before.
import { MLALatentCache } from '@attnkit/kvcache';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { abortEverywhere, describeEachBackend } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { randomInput, randomLayer } from './testing/fixtures/layers.js';

const { available } = await availableBackends();
// Latent rank 4: the absorbed order attends over keys of C + R = 8 channels with values of C = 4,
// a WGSL prefill lavapipe compiles in ~12 s with a cold shader cache (rank 8, keys 12/values 8,
// took 68 s there: over half the test's timeout).
const CONFIG = { dim: 16, nHeads: 2, qLoraRank: 8, kvLoraRank: 4, qkNopeHeadDim: 4, qkRopeHeadDim: 4, vHeadDim: 4, maxSeqLen: 512 };

describeEachBackend(available, (name) => `MLA aborts on ${name}`, (getBackend) => {
  for (const order of ['naive', 'absorbed'] as const) {
    it(`${order === 'naive' ? 'a naive' : 'an absorbed'} prefill with a cache stops, releases, and takes its rows back out`, async () => {
      const backend = getBackend();
      const { layer } = await randomLayer(backend, CONFIG, 5);
      using _layer = layer;
      using cache = new MLALatentCache(backend, { batchSize: 1, kvLoraRank: CONFIG.kvLoraRank, ropeDim: CONFIG.qkRopeHeadDim });
      const prompt = randomInput(backend, 1, 4, 16, 6);
      using _prompt = prompt.x;
      (await layer.forward(prompt.x, { cache })).dispose();
      const held = async (): Promise<unknown> => {
        using rows = await cache.readKeys();
        return { lengths: cache.lengths, rows: Array.from(await rows.data()) };
      };
      const before = await held();
      const long = randomInput(backend, 1, 300, 16, 7);
      using _long = long.x;
      const midway = await abortEverywhere(
        backend,
        6,
        async (signal) => {
          (await layer.forward(long.x, { cache, order, signal })).dispose();
          cache.truncate(4);
        },
        async () => expect(await held()).toEqual(before),
      );
      expect(midway).toBeGreaterThan(0);
    });
  }
});
