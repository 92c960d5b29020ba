import { attention } from '@attnkit/attention-mha';
import { BackendError, CapacityError, ConfigError, ShapeError } from '@attnkit/tensor-core';
import { describeEachBackend, SeededRandom } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import { ContiguousKVCache } from './contiguous.js';
import { PagePool } from './page-pool.js';
import { PagedKVCache } from './paged.js';
import { BACKENDS, HostRows, take, upload, withoutLeaks } from './testing/fixtures/harness.js';
import type { StorageDType } from './types.js';

// Both sides of a comparison run the same attention implementation, so equality is exact and
// checks the cache views themselves, not two kernels' f32 rounding (a paged or ring view goes
// through a row map that a backend's fastest contiguous kernel may not take).
const SAME_KERNEL = 'reference';

/** Rows [from, to) of sequence b of a [B, S, H, W] host array, as [1, to − from, H, W]. */
function sequenceRows(data: Float32Array, B: number, S: number, row: number, b: number): Float32Array {
  return data.slice(b * S * row, (b + 1) * S * row);
}

describeEachBackend(BACKENDS, (name) => `PagedKVCache on '${name}'`, (getBackend) => {
  it('places tokens page by page, shares pages on fork and copies a shared page on the first write', async () => {
    const backend = getBackend();
    const [H, D] = [1, 2];
    await withoutLeaks(backend, async () => {
      using pool = new PagePool(backend, { kvHeads: H, keyDim: D, pageSize: 4, numPages: 8 });
      using cache = new PagedKVCache(pool);
      const token = (x: number, S = 1): ReturnType<typeof upload> => upload(backend, Float32Array.from({ length: S * D }, (_, i) => x + Math.floor(i / D)), [1, S, H, D]);
      {
        using k = token(0, 6);
        await cache.updateAndFetch(k, k);
      }
      expect(cache.blockTables).toEqual([[0, 1]]);
      expect(pool.usedPages).toBe(2);
      const child = cache.fork(0);
      expect(child).toBe(1);
      expect(cache.blockTables).toEqual([[0, 1], [0, 1]]);
      expect(pool.refCount(1)).toBe(2);
      expect(cache.pagesHeld).toBe(2);
      {
        using k = upload(backend, Float32Array.from([100, 100, 200, 200]), [2, 1, H, D]);
        await cache.updateAndFetch(k, k);
      }
      // Sequence 0 wrote first into the shared page 1: it copied it to page 2; sequence 1, now
      // the last holder of page 1, wrote in place.
      expect(cache.blockTables).toEqual([[0, 2], [0, 1]]);
      expect(pool.refCount(0)).toBe(2);
      expect(pool.refCount(1)).toBe(1);
      expect(pool.refCount(2)).toBe(1);
      const keys = await take(cache.readKeys());
      expect(Array.from(keys)).toEqual([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 100, 100, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 200, 200]);
      const view = cache.view();
      expect(view.keys.shape).toEqual([32, H, D]);
      expect(view.rowMap?.shape).toEqual([2, 8]);
      expect(Array.from(await view.rowMap?.dataInt() ?? [])).toEqual([0, 1, 2, 3, 8, 9, 10, 11, 0, 1, 2, 3, 4, 5, 6, 7]);
      cache.removeSequence(0);
      expect(cache.blockTables).toEqual([[0, 1]]);
      expect(pool.refCount(2)).toBe(0);
      cache.truncate(3);
      expect(cache.blockTables).toEqual([[0]]);
      expect(pool.usedPages).toBe(1);
      cache.dispose();
      expect(pool.usedPages).toBe(0);
    });
  });

  it('nbytes counts its distinct pages and its row map; the pool holds every page', async () => {
    const backend = getBackend();
    for (const dtype of ['f32', 'bf16', 'fp8e4m3'] as const) {
      const before = backend.memory().bytesAllocated;
      using pool = new PagePool(backend, { kvHeads: 2, keyDim: 32, valueDim: 16, pageSize: 8, numPages: 6, dtype });
      const perToken = backend.storageBytes(dtype, 2 * 32, dtype === 'fp8e4m3' ? 32 : 1) + backend.storageBytes(dtype, 2 * 16, dtype === 'fp8e4m3' ? 16 : 1);
      expect(pool.bytesPerPage).toBe(8 * perToken);
      expect(pool.nbytes).toBe(6 * 8 * perToken);
      expect(backend.memory().bytesAllocated - before).toBe(pool.nbytes);
      using cache = new PagedKVCache(pool, { batchSize: 2 });
      using k = upload(backend, new Float32Array(2 * 10 * 2 * 32).fill(1), [2, 10, 2, 32]);
      using v = upload(backend, new Float32Array(2 * 10 * 2 * 16).fill(1), [2, 10, 2, 16]);
      const view = await cache.updateAndFetch(k, v);
      cache.fork(1);
      const rowMapBytes = backend.storageBytes('i32', 2 * 16);
      expect(cache.nbytes).toBe(4 * pool.bytesPerPage + rowMapBytes);
      expect(view.rowMap?.size).toBe(2 * 16);
      const inputs = backend.storageBytes('f32', k.size) + backend.storageBytes('f32', v.size);
      expect(backend.memory().bytesAllocated - before - inputs).toBe(pool.nbytes + rowMapBytes);
    }
  });

  it('refuses what the pool cannot hold, bad shapes and bad truncations, unchanged afterwards', async () => {
    const backend = getBackend();
    const [H, D] = [2, 4];
    await withoutLeaks(backend, async () => {
      using pool = new PagePool(backend, { kvHeads: H, keyDim: D, pageSize: 2, numPages: 4 });
      using cache = new PagedKVCache(pool, { batchSize: 2, maxLength: 6 });
      using k3 = upload(backend, new SeededRandom(3).normalArray(2 * 3 * H * D), [2, 3, H, D]);
      await cache.updateAndFetch(k3, k3);
      cache.fork(0);
      const snapshot = async (): Promise<unknown> => ({
        lengths: cache.lengths,
        tables: cache.blockTables,
        used: pool.usedPages,
        refs: [0, 1, 2, 3].map((p) => pool.refCount(p)),
        keys: await take(cache.readKeys()),
        values: await take(cache.readValues()),
      });
      const before = await snapshot();
      using k1 = upload(backend, new Float32Array(3 * 1 * H * D).fill(7), [3, 1, H, D]);
      using k4 = upload(backend, new Float32Array(3 * 4 * H * D).fill(7), [3, 4, H, D]);
      using wrong = upload(backend, new Float32Array(2 * 1 * H * D).fill(7), [2, 1, H, D]);
      // Three sequences each need a page (two of them a copy of the shared page): 3 > 0 free.
      await expect(cache.updateAndFetch(k1, k1)).rejects.toThrow(/at most 0 free pages of 2 tokens in the pool/);
      await expect(cache.updateAndFetch(k4, k4)).rejects.toThrow(CapacityError);
      await expect(cache.updateAndFetch(wrong, wrong)).rejects.toThrow(ShapeError);
      expect(() => cache.truncate([1, 4, 1])).toThrow(CapacityError);
      expect(() => cache.truncate(-2)).toThrow(CapacityError);
      expect(() => cache.fork(3)).toThrow(ConfigError);
      expect(() => cache.removeSequence(-1)).toThrow(ConfigError);
      expect(await snapshot()).toEqual(before);
    });
  });

  it('serves an MLA-style key-prefix layout and keeps refusing once the pool is disposed', async () => {
    const backend = getBackend();
    await withoutLeaks(backend, async () => {
      const pool = new PagePool(backend, { kvHeads: 1, keyDim: 6, valueDim: 4, values: 'keyPrefix', pageSize: 4, numPages: 2 });
      const cache = new PagedKVCache(pool);
      using rows = upload(backend, Float32Array.from({ length: 18 }, (_, i) => i), [1, 3, 1, 6]);
      const view = await cache.updateAndFetch(rows, null);
      expect(view.values).toBeNull();
      expect(view.valueDim).toBe(4);
      expect(await cache.readValues()).toBeNull();
      pool.dispose();
      expect(() => cache.view()).toThrow(BackendError);
      cache.dispose();
    });
  });

  describe.each<StorageDType>(['f32', 'int8'])('randomized: forks, truncations and removals agree with contiguous caches (%s)', (dtype) => {
    for (const seed of [1, 2, 3]) {
      it(`seed ${seed}`, async () => {
        const backend = getBackend();
        const rng = new SeededRandom(seed * 7919 + (dtype === 'f32' ? 0 : 1));
        const [Hq, H, D, Dv] = [4, 2, 8, 4];
        const P = rng.int(1, 5);
        const where = `seed ${seed}, dtype ${dtype}, page size ${P}`;
        await withoutLeaks(backend, async () => {
          using pool = new PagePool(backend, { kvHeads: H, keyDim: D, valueDim: Dv, pageSize: P, numPages: 400, dtype, blockSize: 4 });
          using paged = new PagedKVCache(pool, { batchSize: 2 });
          const mirror = (): ContiguousKVCache => new ContiguousKVCache(backend, { batchSize: 1, kvHeads: H, keyDim: D, valueDim: Dv, dtype, blockSize: 4, step: 8 });
          const mirrors = [mirror(), mirror()];
          // What each sequence was given, so a fork's mirror replays the same f32 rows.
          const historyK = [new HostRows(1, H * D), new HostRows(1, H * D)];
          const historyV = [new HostRows(1, H * Dv), new HostRows(1, H * Dv)];
          let forks = 0;
          let sharing = 0;
          try {
            for (let op = 0; op < 40; op++) {
              const roll = rng.next();
              const B = paged.batchSize;
              if (roll < 0.15 && B < 6) {
                const parent = rng.int(0, B - 1);
                paged.fork(parent);
                forks++;
                const copy = mirror();
                const len = paged.lengths[parent] ?? 0;
                const hk = new HostRows(1, H * D);
                const hv = new HostRows(1, H * Dv);
                if (len > 0) {
                  hk.append(historyK[parent]?.dense() ?? new Float32Array(), len);
                  hv.append(historyV[parent]?.dense() ?? new Float32Array(), len);
                  using k = upload(backend, hk.dense(), [1, len, H, D]);
                  using v = upload(backend, hv.dense(), [1, len, H, Dv]);
                  await copy.updateAndFetch(k, v);
                }
                mirrors.push(copy);
                historyK.push(hk);
                historyV.push(hv);
              } else if (roll < 0.25) {
                const b = rng.int(0, B - 1);
                const n = rng.int(0, paged.lengths[b] ?? 0);
                const targets = paged.lengths.map((len, i) => (i === b ? n : len));
                paged.truncate(targets);
                mirrors[b]?.truncate(n);
                historyK[b]?.truncate([n]);
                historyV[b]?.truncate([n]);
              } else if (roll < 0.3 && B > 1) {
                const b = rng.int(0, B - 1);
                paged.removeSequence(b);
                mirrors.splice(b, 1)[0]?.dispose();
                historyK.splice(b, 1);
                historyV.splice(b, 1);
              } else {
                const S = rng.pick([1, 1, 2, 3, 7]);
                const k = rng.normalArray(B * S * H * D);
                const v = rng.normalArray(B * S * H * Dv);
                const q = rng.normalArray(B * S * Hq * D);
                using kt = upload(backend, k, [B, S, H, D]);
                using vt = upload(backend, v, [B, S, H, Dv]);
                using qt = upload(backend, q, [B, S, Hq, D]);
                const view = await paged.updateAndFetch(kt, vt);
                const out = await take((await attention(qt, view.keys, view.values, { kvLengths: view.lengths, rowMap: view.rowMap, implementation: SAME_KERNEL })).out);
                for (const [b, m] of mirrors.entries()) {
                  using kb = upload(backend, sequenceRows(k, B, S, H * D, b), [1, S, H, D]);
                  using vb = upload(backend, sequenceRows(v, B, S, H * Dv, b), [1, S, H, Dv]);
                  using qb = upload(backend, sequenceRows(q, B, S, Hq * D, b), [1, S, Hq, D]);
                  const mv = await m.updateAndFetch(kb, vb);
                  historyK[b]?.append(sequenceRows(k, B, S, H * D, b), S);
                  historyV[b]?.append(sequenceRows(v, B, S, H * Dv, b), S);
                  const expected = await take((await attention(qb, mv.keys, mv.values, { kvLengths: mv.lengths, implementation: SAME_KERNEL })).out);
                  expect(out.subarray(b * S * Hq * Dv, (b + 1) * S * Hq * Dv), `${where}, op ${op}, sequence ${b}`).toEqual(expected);
                }
              }
              expect(paged.lengths, `${where}, op ${op}`).toEqual(mirrors.map((m) => m.lengths[0]));
              if (paged.pagesHeld < paged.blockTables.flat().length) sharing++;
            }
            // The run exercised what it is meant to: forks, and pages shared between sequences.
            expect(forks, where).toBeGreaterThan(0);
            expect(sharing, where).toBeGreaterThan(0);
            // Row by row: the paged rows are exactly the contiguous rows.
            const Tmax = Math.max(...paged.lengths);
            const keys = await take(paged.readKeys());
            const values = await take(paged.readValues());
            for (const [b, m] of mirrors.entries()) {
              const len = m.lengths[0] ?? 0;
              const mk = await take(m.readKeys());
              const mvals = await take(m.readValues());
              expect(keys.subarray(b * Tmax * H * D, (b * Tmax + len) * H * D), `${where}, keys of sequence ${b}`).toEqual(mk);
              expect(values.subarray(b * Tmax * H * Dv, (b * Tmax + len) * H * Dv), `${where}, values of sequence ${b}`).toEqual(mvals);
            }
            const pagesNeeded = paged.lengths.reduce((n, len) => n + Math.ceil(len / P), 0);
            expect(paged.pagesHeld, where).toBeLessThanOrEqual(pagesNeeded);
            expect(pool.usedPages, where).toBe(paged.pagesHeld);
          } finally {
            for (const m of mirrors) m.dispose();
          }
          paged.dispose();
          expect(pool.usedPages, where).toBe(0);
        });
      });
    }
  });
});
