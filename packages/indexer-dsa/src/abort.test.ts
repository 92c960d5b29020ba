// DSA.forward (indexer scoring and top-k, then sparse MLA) stops at each of its first
// checkpoints in turn (a signal that fires on its n-th read), on every backend: an
// AbortedError, every tensor released, both caches holding exactly the tokens they held before.
import { availableBackends } from '@attnkit/tensor-core/testing';
import { abortEverywhere, describeEachBackend } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { SMALL, randomInput, randomLayer } from './testing/fixtures/layers.js';

const { available } = await availableBackends();

describeEachBackend(available, (name) => `DSA aborts on ${name}`, (getBackend) => {
  it('a prefill with a cache stops, releases, and takes its rows back out of both caches', async () => {
    const backend = getBackend();
    const { layer } = await randomLayer(backend, SMALL, 8);
    using _layer = layer;
    using cache = layer.createCache({ batchSize: 1 });
    const prompt = randomInput(backend, 1, 4, SMALL.dim ?? 0, 9);
    using _prompt = prompt.x;
    (await layer.forward(prompt.x, { cache })).dispose();
    const held = async (): Promise<unknown> => {
      using latent = await cache.latent.readKeys();
      using keys = await cache.indexKeys.readKeys();
      return { lengths: cache.lengths, latent: Array.from(await latent.data()), keys: Array.from(await keys.data()) };
    };
    const before = await held();
    const long = randomInput(backend, 1, 100, SMALL.dim ?? 0, 10);
    using _long = long.x;
    const midway = await abortEverywhere(
      backend,
      8,
      async (signal) => {
        (await layer.forward(long.x, { cache, signal })).dispose();
        cache.truncate(4);
      },
      async () => expect(await held()).toEqual(before),
    );
    expect(midway).toBeGreaterThan(0);
  });
});
