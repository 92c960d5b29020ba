import { attention } from '@attnkit/attention-mha';
import { ConfigError, ShapeError } from '@attnkit/tensor-core';
import { compareArrays, describeEachBackend, loadGoldenCases, SeededRandom } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { MLALatentCache } from './mla.js';
import { BACKENDS, HostRows, storesCompactly, take, upload, withoutLeaks } from './testing/fixtures/harness.js';

/** Columns [from, from + width) of rows of `rowSize` values. */
function columns(data: Float32Array, rowSize: number, from: number, width: number): Float32Array {
  const rows = data.length / rowSize;
  const out = new Float32Array(rows * width);
  for (let r = 0; r < rows; r++) out.set(data.subarray(r * rowSize + from, r * rowSize + from + width), r * width);
  return out;
}

/** [c ‖ k_pe] rows [B, S, 1, C + dr] from c [B, S, C] and k_pe [B, S, dr]. */
function joinRows(latent: Float32Array, rope: Float32Array, C: number, dr: number): Float32Array {
  const n = latent.length / C;
  const out = new Float32Array(n * (C + dr));
  for (let r = 0; r < n; r++) {
    out.set(latent.subarray(r * C, (r + 1) * C), r * (C + dr));
    out.set(rope.subarray(r * dr, (r + 1) * dr), r * (C + dr) + C);
  }
  return out;
}

describeEachBackend(BACKENDS, (name) => `MLALatentCache on '${name}'`, (getBackend) => {
  it('stores [c ‖ k_pe] once per token and reads the latent and rope parts back', async () => {
    const backend = getBackend();
    const rng = new SeededRandom(8);
    const [B, C, dr] = [2, 16, 8];
    await withoutLeaks(backend, async () => {
      using cache = new MLALatentCache(backend, { batchSize: B, kvLoraRank: C, ropeDim: dr, step: 16 });
      const host = new HostRows(B, C + dr);
      for (const S of [9, 1, 4]) {
        const rows = rng.normalArray(B * S * (C + dr));
        using t = upload(backend, rows, [B, S, 1, C + dr]);
        const view = await cache.updateAndFetch(t, null);
        host.append(rows, S);
        expect(view.values).toBeNull();
        expect(view.valueDim).toBe(C);
        expect(view.rowMap).toBeNull();
        expect(view.keys.shape).toEqual([B, 16, 1, C + dr]);
        expect(view.lengths).toEqual(host.lengths());
      }
      const all = host.dense();
      const latent = await cache.readLatent();
      expect(latent.shape).toEqual([B, 14, C]);
      expect(await take(latent)).toEqual(columns(all, C + dr, 0, C));
      expect(await take(cache.readRope())).toEqual(columns(all, C + dr, C, dr));
      expect(await cache.readValues()).toBeNull();
    });
  });

  it('the absorbed form attends over the view with V = the latent prefix', async () => {
    const backend = getBackend();
    const rng = new SeededRandom(9);
    const [B, H, C, dr, S] = [2, 4, 16, 8, 3];
    await withoutLeaks(backend, async () => {
      using cache = new MLALatentCache(backend, { batchSize: B, kvLoraRank: C, ropeDim: dr });
      using prefill = upload(backend, rng.normalArray(B * 10 * (C + dr)), [B, 10, 1, C + dr]);
      await cache.updateAndFetch(prefill);
      using step = upload(backend, rng.normalArray(B * S * (C + dr)), [B, S, 1, C + dr]);
      const view = await cache.updateAndFetch(step);
      using q = upload(backend, rng.normalArray(B * S * H * (C + dr)), [B, S, H, C + dr]);
      const scale = 1 / Math.sqrt(24);
      const absorbed = await attention(q, view.keys, view.values, { kvLengths: view.lengths, valueDim: view.valueDim, scale });
      using keys = await cache.readKeys(); // [B, 13, 1, C + dr]
      using latent = upload(backend, await take(cache.readLatent()), [B, 13, 1, C]);
      const explicit = await attention(q, keys, latent, { scale });
      expect(await take(absorbed.out)).toEqual(await take(explicit.out));
    });
  });

  it('quantised storage: DeepSeek-V3 rows of 576 get 64-value blocks, nbytes counts the scales', async () => {
    const backend = getBackend();
    await withoutLeaks(backend, async () => {
      using cache = new MLALatentCache(backend, { batchSize: 1, kvLoraRank: 512, ropeDim: 64, dtype: 'fp8e4m3', step: 4 });
      expect(cache.blockSize).toBe(64);
      expect(cache.rowWidth).toBe(576);
      const rows = new SeededRandom(2).normalArray(3 * 576);
      using t = upload(backend, rows, [1, 3, 1, 576]);
      await cache.updateAndFetch(t);
      if (storesCompactly(backend, 'fp8e4m3')) expect(cache.nbytes).toBe(4 * (576 + 9 * 4));
      expect(cache.nbytes).toBe(backend.storageBytes('fp8e4m3', 4 * 576, 64));
      const back = await take(cache.readKeys());
      for (let i = 0; i < rows.length; i++) expect(Math.abs((back[i] as number) - (rows[i] as number))).toBeLessThanOrEqual(Math.abs(rows[i] as number) / 16 + 1e-3);
      expect(() => new MLALatentCache(backend, { batchSize: 1, kvLoraRank: 512, ropeDim: 64, dtype: 'fp8e4m3', blockSize: 128 })).toThrow(ConfigError);
    });
  });

  it('refuses values, wrong heads and wrong widths, unchanged afterwards', async () => {
    const backend = getBackend();
    await withoutLeaks(backend, async () => {
      using cache = new MLALatentCache(backend, { batchSize: 1, kvLoraRank: 4, ropeDim: 2 });
      using good = upload(backend, new Float32Array(6).fill(1), [1, 1, 1, 6]);
      await cache.updateAndFetch(good, null);
      using twoHeads = upload(backend, new Float32Array(12), [1, 1, 2, 6]);
      using narrow = upload(backend, new Float32Array(4), [1, 1, 1, 4]);
      await expect(cache.updateAndFetch(good, good)).rejects.toThrow(/MLALatentCache.updateAndFetch.*v = null \(the first 4 key channels are the values\)/);
      await expect(cache.updateAndFetch(twoHeads)).rejects.toThrow(ShapeError);
      await expect(cache.updateAndFetch(narrow)).rejects.toThrow(/expected k of shape \[1, S, 1, 6\]/);
      expect(cache.lengths).toEqual([1]);
      expect(await take(cache.readKeys())).toEqual(new Float32Array(6).fill(1));
    });
  });

  for (const name of ['mla_decode', 'mla_chunk']) {
    it(`holds the golden ${name} kv_cache / pe_cache when fed prefill then step rows`, async () => {
      const backend = getBackend();
      const c = loadGoldenCases().find((g) => g.name === name);
      if (!c) throw new Error(`golden case ${name} missing`);
      const [B, T, C] = c.tensor('kv_cache').shape as [number, number, number];
      const dr = c.tensor('pe_cache').shape[2] as number;
      const S0 = c.number('prefill_len');
      const rows = joinRows(c.tensor('kv_cache').data, c.tensor('pe_cache').data, C, dr);
      await withoutLeaks(backend, async () => {
        using cache = new MLALatentCache(backend, { batchSize: B, kvLoraRank: C, ropeDim: dr });
        const per = (from: number, to: number): Float32Array => {
          const out = new Float32Array(B * (to - from) * (C + dr));
          for (let b = 0; b < B; b++) out.set(rows.subarray((b * T + from) * (C + dr), (b * T + to) * (C + dr)), b * (to - from) * (C + dr));
          return out;
        };
        using prefill = upload(backend, per(0, S0), [B, S0, 1, C + dr]);
        using step = upload(backend, per(S0, T), [B, T - S0, 1, C + dr]);
        await cache.updateAndFetch(prefill);
        await cache.updateAndFetch(step);
        const tolerance = c.manifest.tolerance;
        expect(compareArrays(await take(cache.readLatent()), c.tensor('kv_cache').data, tolerance).pass).toBe(true);
        expect(compareArrays(await take(cache.readRope()), c.tensor('pe_cache').data, tolerance).pass).toBe(true);
      });
    });
  }
});
