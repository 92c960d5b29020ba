import { attention } from '@attnkit/attention-mha';
import { CapacityError, ConfigError, ShapeError } from '@attnkit/tensor-core';
import { describeEachBackend, SeededRandom } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { ContiguousKVCache } from './contiguous.js';
import { SlidingWindowKVCache } from './sliding-window.js';
import { BACKENDS, take, upload, withoutLeaks } from './testing/fixtures/harness.js';

// Both sides of a comparison run the same attention implementation, so equality is exact and
// checks the cache views themselves, not two kernels' f32 rounding (a paged or ring view goes
// through a row map that a backend's fastest contiguous kernel may not take).
const SAME_KERNEL = 'reference';

describeEachBackend(BACKENDS, (name) => `SlidingWindowKVCache on '${name}'`, (getBackend) => {
  const configs = [
    { window: 5, sinkTokens: 0, maxChunk: 2, seed: 1 },
    { window: 4, sinkTokens: 2, maxChunk: 1, seed: 2 },
    { window: 1, sinkTokens: 1, maxChunk: 3, seed: 3 },
    { window: 8, sinkTokens: 3, maxChunk: 4, seed: 4 },
  ];
  for (const { window, sinkTokens, maxChunk, seed } of configs) {
    it(`window ${window}, ${sinkTokens} sinks: decode and chunked prefill see what a full cache with the same window sees (seed ${seed})`, async () => {
      const backend = getBackend();
      const rng = new SeededRandom(seed);
      const [B, Hq, H, D] = [2, 4, 2, 4];
      const where = `seed ${seed}`;
      await withoutLeaks(backend, async () => {
        using ring = new SlidingWindowKVCache(backend, { batchSize: B, kvHeads: H, keyDim: D, window, sinkTokens, maxChunk });
        using full = new ContiguousKVCache(backend, { batchSize: B, kvHeads: H, keyDim: D, step: 16 });
        let grew = 0;
        for (let step = 0; step < 30; step++) {
          if (step % 7 === 6) {
            // Roll back as far as the ring allows (speculative decoding's rejected drafts).
            const len = ring.lengths[0] ?? 0;
            const n = Math.max(0, len - rng.int(0, ring.ringSize - (window - 1)));
            ring.truncate(n);
            full.truncate(n);
            continue;
          }
          const S = rng.pick([1, 1, 1, 2, 3, 6, 11]);
          const ringBefore = ring.ringSize;
          using k = upload(backend, rng.normalArray(B * S * H * D), [B, S, H, D]);
          using v = upload(backend, rng.normalArray(B * S * H * D), [B, S, H, D]);
          using q = upload(backend, rng.normalArray(B * S * Hq * D), [B, S, Hq, D]);
          const rv = await ring.updateAndFetch(k, v);
          const fv = await full.updateAndFetch(k, v);
          if (ring.ringSize > ringBefore) grew++;
          expect(ring.ringSize, where).toBeGreaterThanOrEqual(window - 1 + S);
          expect(rv.window).toBe(window);
          expect(rv.sinkTokens).toBe(sinkTokens);
          const fromRing = await attention(q, rv.keys, rv.values, { kvLengths: rv.lengths, rowMap: rv.rowMap, sinkTokens: rv.sinkTokens, window: rv.window, implementation: SAME_KERNEL });
          const fromFull = await attention(q, fv.keys, fv.values, { kvLengths: fv.lengths, window, sinkTokens, implementation: SAME_KERNEL });
          expect(await take(fromRing.out), `${where}, step ${step}, S ${S}`).toEqual(await take(fromFull.out));
        }
        expect(grew, where).toBeGreaterThan(0);
        // The view holds the sinks and then the retained tail, in order.
        const len = ring.lengths[0] ?? 0;
        const retained = ring.view().lengths[0] ?? 0;
        const all = await take(full.readKeys());
        const expected = new Float32Array(B * retained * H * D);
        for (let b = 0; b < B; b++) {
          const sinks = Math.min(len, sinkTokens);
          const tail = retained - sinks;
          expected.set(all.subarray(b * len * H * D, (b * len + sinks) * H * D), b * retained * H * D);
          expected.set(all.subarray((b * len + len - tail) * H * D, (b + 1) * len * H * D), (b * retained + sinks) * H * D);
        }
        expect(await take(ring.readKeys()), where).toEqual(expected);
      });
    });
  }

  it('holds sinkTokens + ring rows per sequence, exactly what nbytes says', () => {
    const backend = getBackend();
    const before = backend.memory().bytesAllocated;
    using cache = new SlidingWindowKVCache(backend, { batchSize: 2, kvHeads: 2, keyDim: 16, window: 10, sinkTokens: 4, maxChunk: 6, dtype: 'fp8e4m3' });
    expect(cache.ringSize).toBe(15);
    const rows = 2 * (4 + 15);
    expect(cache.nbytes).toBe(2 * backend.storageBytes('fp8e4m3', rows * 2 * 16, 16));
    expect(backend.memory().bytesAllocated - before).toBe(cache.nbytes);
    const view = cache.view();
    expect(view.rowMap?.shape).toEqual([2, 19]);
    expect(cache.nbytes).toBe(2 * backend.storageBytes('fp8e4m3', rows * 2 * 16, 16) + backend.storageBytes('i32', 2 * 19));
    expect(backend.memory().bytesAllocated - before).toBe(cache.nbytes);
  });

  it('refuses to roll back past evicted tokens, and bad shapes, unchanged afterwards', async () => {
    const backend = getBackend();
    const [H, D] = [1, 2];
    await withoutLeaks(backend, async () => {
      using cache = new SlidingWindowKVCache(backend, { batchSize: 1, kvHeads: H, keyDim: D, window: 3, maxChunk: 2 });
      for (let t = 0; t < 9; t++) {
        using k = upload(backend, new Float32Array(D).fill(t), [1, 1, H, D]);
        await cache.updateAndFetch(k, k);
      }
      // Ring of 4 rows: positions 5..8 retained. The next query after a rollback to n needs n−2, n−1.
      const snapshot = async (): Promise<unknown> => ({ lengths: cache.lengths, view: cache.view().lengths, keys: Array.from(await take(cache.readKeys())) });
      const before = await snapshot();
      expect((before as { keys: number[] }).keys).toEqual([5, 5, 6, 6, 7, 7, 8, 8]);
      expect(() => cache.truncate(6)).toThrow(/expected a length ≥ 7 for sequence 0 \(tokens before 5 were evicted/);
      expect(() => cache.truncate(10)).toThrow(CapacityError);
      using wide = upload(backend, new Float32Array(2 * D), [1, 1, 2, D]);
      await expect(cache.updateAndFetch(wide, wide)).rejects.toThrow(ShapeError);
      expect(await snapshot()).toEqual(before);
      cache.truncate(7);
      expect(Array.from(await take(cache.readKeys()))).toEqual([5, 5, 6, 6]);
    });
  });

  it('validates its options', () => {
    const backend = getBackend();
    expect(() => new SlidingWindowKVCache(backend, { batchSize: 1, kvHeads: 1, keyDim: 2, window: 0 })).toThrow(ConfigError);
    expect(() => new SlidingWindowKVCache(backend, { batchSize: 1, kvHeads: 1, keyDim: 2, window: 2, sinkTokens: -1 })).toThrow(ConfigError);
    expect(() => new SlidingWindowKVCache(backend, { batchSize: 1, kvHeads: 1, keyDim: 2, window: 2, maxChunk: 0 })).toThrow(ConfigError);
  });
});
