import { ShapeError, dequantizeBlocks, quantizeBlocks } from '@attnkit/tensor-core';
import { compareArrays, describeEachBackend, loadGoldenCases, SeededRandom } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { IndexerKeyCache } from './indexer.js';
import { BACKENDS, HostRows, storesCompactly, take, upload, withoutLeaks } from './testing/fixtures/harness.js';

describeEachBackend(BACKENDS, (name) => `IndexerKeyCache on '${name}'`, (getBackend, backendName) => {
  it('holds one key per token; the view is keys only', async () => {
    const backend = getBackend();
    const rng = new SeededRandom(4);
    const [B, DI] = [2, 32];
    await withoutLeaks(backend, async () => {
      using cache = new IndexerKeyCache(backend, { batchSize: B, keyDim: DI, step: 8 });
      const host = new HostRows(B, DI);
      for (const S of [5, 1, 1, 6]) {
        const keys = rng.normalArray(B * S * DI);
        using t = upload(backend, keys, [B, S, 1, DI]);
        const view = await cache.updateAndFetch(t, null);
        host.append(keys, S);
        expect(view.values).toBeNull();
        expect(view.valueDim).toBeUndefined();
        expect(view.keys.shape).toEqual([B, cache.allocatedTokens, 1, DI]);
      }
      const read = await cache.readIndexKeys();
      expect(read.shape).toEqual([B, 13, DI]);
      expect(await take(read)).toEqual(host.dense());
    });
  });

  it('fp8 e4m3 as deployed: one f32 scale per 128-value key, 132 bytes per token', async () => {
    const backend = getBackend();
    const rng = new SeededRandom(6);
    await withoutLeaks(backend, async () => {
      using cache = new IndexerKeyCache(backend, { batchSize: 1, keyDim: 128, dtype: 'fp8e4m3', step: 16 });
      expect(cache.blockSize).toBe(128);
      const keys = rng.normalArray(3 * 128, 2);
      using t = upload(backend, keys, [1, 3, 1, 128]);
      await cache.updateAndFetch(t);
      expect(cache.nbytes).toBe(storesCompactly(backend, 'fp8e4m3') ? 16 * 132 : backend.storageBytes('fp8e4m3', 16 * 128, 128));
      const read = await take(cache.readIndexKeys());
      const expected = dequantizeBlocks(quantizeBlocks(keys, 'fp8e4m3', { blockSize: 128 }), 'fp8e4m3');
      if (backendName === 'cpu') expect(read).toEqual(expected);
      else for (let i = 0; i < read.length; i++) expect(Math.abs((read[i] as number) - (expected[i] as number))).toBeLessThanOrEqual(Math.abs(expected[i] as number) / 8 + 1e-3);
    });
  });

  it('refuses values and wrong widths, unchanged afterwards', async () => {
    const backend = getBackend();
    await withoutLeaks(backend, async () => {
      using cache = new IndexerKeyCache(backend, { batchSize: 1, keyDim: 4, maxCapacity: 2 });
      using good = upload(backend, new Float32Array(4).fill(3), [1, 1, 1, 4]);
      await cache.updateAndFetch(good);
      using wide = upload(backend, new Float32Array(5), [1, 1, 1, 5]);
      using two = upload(backend, new Float32Array(8), [1, 2, 1, 4]);
      await expect(cache.updateAndFetch(good, good)).rejects.toThrow(/IndexerKeyCache.updateAndFetch.*the cache holds keys only/);
      await expect(cache.updateAndFetch(wide)).rejects.toThrow(ShapeError);
      await expect(cache.updateAndFetch(two)).rejects.toThrow(/IndexerKeyCache.updateAndFetch.*at most 2 tokens/);
      expect(() => cache.truncate(2)).toThrow(/IndexerKeyCache.truncate/);
      expect(cache.lengths).toEqual([1]);
      expect(await take(cache.readIndexKeys())).toEqual(new Float32Array(4).fill(3));
    });
  });

  it('holds the golden dsa_decode_topk_lt index_k_cache when fed prefill then step keys', async () => {
    const backend = getBackend();
    const c = loadGoldenCases().find((g) => g.name === 'dsa_decode_topk_lt');
    if (!c) throw new Error('golden case dsa_decode_topk_lt missing');
    const expected = c.tensor('index_k_cache');
    const [B, T, DI] = expected.shape as [number, number, number];
    const S0 = c.number('prefill_len');
    await withoutLeaks(backend, async () => {
      using cache = new IndexerKeyCache(backend, { batchSize: B, keyDim: DI });
      for (const [from, to] of [[0, S0], [S0, T]] as const) {
        const part = new Float32Array(B * (to - from) * DI);
        for (let b = 0; b < B; b++) part.set(expected.data.subarray((b * T + from) * DI, (b * T + to) * DI), b * (to - from) * DI);
        using t = upload(backend, part, [B, to - from, 1, DI]);
        await cache.updateAndFetch(t);
      }
      expect(compareArrays(await take(cache.readIndexKeys()), expected.data, c.manifest.tolerance).pass).toBe(true);
    });
  });
});
