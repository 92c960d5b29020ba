import { attention } from '@attnkit/attention-mha';
import {
  CapacityError,
  ConfigError,
  DTypeError,
  ShapeError,
  cast,
  decodeBf16,
  decodeF16,
  dequantizeBlocks,
  encodeBf16,
  encodeF16,
  quantizeBlocks,
  tensor,
} from '@attnkit/tensor-core';
import { describeEachBackend, SeededRandom } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import { ContiguousKVCache } from './contiguous.js';
import { BACKENDS, HostRows, storesCompactly, take, upload, withoutLeaks } from './testing/fixtures/harness.js';
import type { StorageDType } from './types.js';

/** What the storage should hold for `values` written into rows of `width` values as `dtype`. */
function stored(values: Float32Array, dtype: StorageDType, width: number, blockSize: number): Float32Array {
  switch (dtype) {
    case 'f32':
      return values;
    case 'f16':
      return decodeF16(encodeF16(values));
    case 'bf16':
      return decodeBf16(encodeBf16(values));
    case 'int8':
    case 'fp8e4m3': {
      expect(width % blockSize).toBe(0);
      return dequantizeBlocks(quantizeBlocks(values, dtype, { blockSize }), dtype);
    }
  }
}

describeEachBackend(BACKENDS, (name) => `ContiguousKVCache on '${name}'`, (getBackend, backendName) => {
  it('appends prefill, chunk and decode steps and reads back exactly what was written', async () => {
    const backend = getBackend();
    const seed = 11;
    const rng = new SeededRandom(seed);
    const [B, H, D, Dv] = [2, 3, 8, 4];
    await withoutLeaks(backend, async () => {
      using cache = new ContiguousKVCache(backend, { batchSize: B, kvHeads: H, keyDim: D, valueDim: Dv, step: 16 });
      const hostK = new HostRows(B, H * D);
      const hostV = new HostRows(B, H * Dv);
      for (const S of [7, 1, 1, 12, 1, 5]) {
        const k = rng.normalArray(B * S * H * D);
        const v = rng.normalArray(B * S * H * Dv);
        using kt = upload(backend, k, [B, S, H, D]);
        using vt = upload(backend, v, [B, S, H, Dv]);
        const view = await cache.updateAndFetch(kt, vt);
        hostK.append(k, S);
        hostV.append(v, S);
        expect(view.lengths).toEqual(hostK.lengths());
        expect(view.rowMap).toBeNull();
        expect(view.keys.shape).toEqual([B, cache.allocatedTokens, H, D]);
        expect(view.values?.shape).toEqual([B, cache.allocatedTokens, H, Dv]);
        expect(cache.allocatedTokens % 16, `seed ${seed}`).toBe(0);
      }
      expect(cache.lengths).toEqual([27, 27]);
      expect(cache.allocatedTokens).toBe(32);
      expect(await take(cache.readKeys())).toEqual(hostK.dense());
      expect(await take(cache.readValues())).toEqual(hostV.dense());
    });
  });

  it('grows once per chunk, never per token', async () => {
    const backend = getBackend();
    await withoutLeaks(backend, async () => {
      using cache = new ContiguousKVCache(backend, { batchSize: 1, kvHeads: 1, keyDim: 4, step: 8 });
      const storages = new Set<unknown>();
      for (let t = 0; t < 20; t++) {
        using k = upload(backend, new Float32Array(4).fill(t), [1, 1, 1, 4]);
        using v = upload(backend, new Float32Array(4).fill(-t), [1, 1, 1, 4]);
        const view = await cache.updateAndFetch(k, v);
        storages.add(view.keys);
      }
      // 20 tokens with step 8: storages of 8, 16 and 24 tokens, i.e. two growth copies.
      expect(storages.size).toBe(3);
      expect(cache.allocatedTokens).toBe(24);
    });
  });

  it('keeps per-sequence lengths: truncate one sequence, then append at different offsets', async () => {
    const backend = getBackend();
    const rng = new SeededRandom(5);
    const [B, H, D] = [3, 2, 4];
    await withoutLeaks(backend, async () => {
      using cache = new ContiguousKVCache(backend, { batchSize: B, kvHeads: H, keyDim: D, step: 4 });
      const hostK = new HostRows(B, H * D);
      const hostV = new HostRows(B, H * D);
      const append = async (S: number): Promise<void> => {
        const k = rng.normalArray(B * S * H * D);
        const v = rng.normalArray(B * S * H * D);
        using kt = upload(backend, k, [B, S, H, D]);
        using vt = upload(backend, v, [B, S, H, D]);
        await cache.updateAndFetch(kt, vt);
        hostK.append(k, S);
        hostV.append(v, S);
      };
      await append(6);
      cache.truncate([6, 2, 4]);
      hostK.truncate([6, 2, 4]);
      hostV.truncate([6, 2, 4]);
      await append(3);
      expect(cache.lengths).toEqual([9, 5, 7]);
      expect(await take(cache.readKeys())).toEqual(hostK.dense());
      expect(await take(cache.readValues())).toEqual(hostV.dense());
      cache.truncate(1);
      hostK.truncate([1, 1, 1]);
      hostV.truncate([1, 1, 1]);
      await append(1);
      expect(cache.lengths).toEqual([2, 2, 2]);
      expect(await take(cache.readKeys())).toEqual(hostK.dense());
    });
  });

  it('feeds attention() directly: same output as attention over the concatenated history', async () => {
    const backend = getBackend();
    const rng = new SeededRandom(21);
    const [B, Hq, H, D] = [2, 4, 2, 8];
    await withoutLeaks(backend, async () => {
      using cache = new ContiguousKVCache(backend, { batchSize: B, kvHeads: H, keyDim: D, step: 8 });
      const hostK = new HostRows(B, H * D);
      const hostV = new HostRows(B, H * D);
      for (const S of [5, 1, 3]) {
        const k = rng.normalArray(B * S * H * D);
        const v = rng.normalArray(B * S * H * D);
        using kt = upload(backend, k, [B, S, H, D]);
        using vt = upload(backend, v, [B, S, H, D]);
        using q = upload(backend, rng.normalArray(B * S * Hq * D), [B, S, Hq, D]);
        const view = await cache.updateAndFetch(kt, vt);
        hostK.append(k, S);
        hostV.append(v, S);
        const T = hostK.lengths()[0] ?? 0;
        using kAll = upload(backend, hostK.dense(), [B, T, H, D]);
        using vAll = upload(backend, hostV.dense(), [B, T, H, D]);
        const fromCache = await attention(q, view.keys, view.values, { kvLengths: view.lengths, rowMap: view.rowMap });
        const direct = await attention(q, kAll, vAll);
        expect(await take(fromCache.out)).toEqual(await take(direct.out));
      }
    });
  });

  describe.each<StorageDType>(['f16', 'bf16', 'int8', 'fp8e4m3'])('%s storage', (dtype) => {
    it('quantises on write, reads back the decoded rows, and attention reads the storage as stored', async () => {
      const backend = getBackend();
      const rng = new SeededRandom(3);
      const [B, Hq, H, D, Dv] = [2, 4, 2, 32, 16];
      await withoutLeaks(backend, async () => {
        using cache = new ContiguousKVCache(backend, { batchSize: B, kvHeads: H, keyDim: D, valueDim: Dv, dtype, blockSize: 16, step: 8 });
        expect(cache.dtype).toBe(dtype);
        const keyBlock = dtype === 'int8' || dtype === 'fp8e4m3' ? 16 : 1;
        const hostK = new HostRows(B, H * D);
        const hostV = new HostRows(B, H * Dv);
        let view;
        for (const S of [6, 1, 4]) {
          const k = rng.normalArray(B * S * H * D, 3);
          const v = rng.normalArray(B * S * H * Dv, 0.5);
          using kt = upload(backend, k, [B, S, H, D]);
          using vt = upload(backend, v, [B, S, H, Dv]);
          view = await cache.updateAndFetch(kt, vt);
          hostK.append(k, S);
          hostV.append(v, S);
        }
        if (!view) throw new Error('no view');
        expect(view.keys.dtype).toBe(dtype);
        const expectedK = stored(hostK.dense(), dtype, D, keyBlock);
        const expectedV = stored(hostV.dense(), dtype, Dv, keyBlock);
        const readK = await take(cache.readKeys());
        const readV = await take(cache.readValues());
        if (backendName === 'cpu') {
          expect(readK).toEqual(expectedK);
          expect(readV).toEqual(expectedV);
        } else {
          // Other backends may round a tie the other way: allow one storage step, no more.
          const step = dtype === 'int8' ? 1 / 127 : dtype === 'fp8e4m3' ? 1 / 8 : 2 ** -7;
          const worst = (a: Float32Array, e: Float32Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - (e[i] as number)) / (Math.abs(e[i] as number) + 1e-6)), 0);
          expect(worst(readK, expectedK)).toBeLessThanOrEqual(step * 4);
          expect(worst(readV, expectedV)).toBeLessThanOrEqual(step * 4);
        }
        // Attention over the quantised storage equals attention over its decoded rows.
        const T = hostK.lengths()[0] ?? 0;
        using q = upload(backend, rng.normalArray(B * 2 * Hq * D), [B, 2, Hq, D]);
        using kAll = upload(backend, readK, [B, T, H, D]);
        using vAll = upload(backend, readV, [B, T, H, Dv]);
        const fromCache = await attention(q, view.keys, view.values, { kvLengths: view.lengths });
        const direct = await attention(q, kAll, vAll);
        const a = await take(fromCache.out);
        const e = await take(direct.out);
        for (let i = 0; i < a.length; i++) expect(Math.abs((a[i] as number) - (e[i] as number))).toBeLessThan(1e-5);
      });
    });
  });

  it('nbytes is exact: it matches the backend allocation, payload and scales', async () => {
    const backend = getBackend();
    for (const dtype of ['f32', 'bf16', 'fp8e4m3', 'int8'] as const) {
      const before = backend.memory().bytesAllocated;
      using cache = new ContiguousKVCache(backend, { batchSize: 2, kvHeads: 2, keyDim: 64, valueDim: 32, dtype, step: 16 });
      expect(cache.nbytes).toBe(0);
      using k = upload(backend, new Float32Array(2 * 3 * 2 * 64).fill(0.5), [2, 3, 2, 64]);
      using v = upload(backend, new Float32Array(2 * 3 * 2 * 32).fill(0.25), [2, 3, 2, 32]);
      await cache.updateAndFetch(k, v);
      const scale = dtype === 'fp8e4m3' || dtype === 'int8' ? 4 : 0;
      const perToken = dtype === 'f32' ? 4 * 2 * 96 : dtype === 'bf16' ? 2 * 2 * 96 : 2 * 96 + 2 * (1 + 1) * scale;
      if (storesCompactly(backend, dtype)) expect(cache.nbytes).toBe(2 * 16 * perToken);
      expect(cache.nbytes).toBe(backend.storageBytes(dtype, 2 * 16 * 2 * 64, 64) + backend.storageBytes(dtype, 2 * 16 * 2 * 32, 32));
      const inputs = backend.storageBytes('f32', k.size) + backend.storageBytes('f32', v.size);
      expect(backend.memory().bytesAllocated - before - inputs).toBe(cache.nbytes);
    }
  });

  it('respects maxCapacity: growth stops there and an overflowing append throws CapacityError', async () => {
    const backend = getBackend();
    await withoutLeaks(backend, async () => {
      using cache = new ContiguousKVCache(backend, { batchSize: 1, kvHeads: 1, keyDim: 2, step: 8, maxCapacity: 10 });
      using k9 = upload(backend, new Float32Array(18).fill(1), [1, 9, 1, 2]);
      await cache.updateAndFetch(k9, k9);
      expect(cache.allocatedTokens).toBe(10);
      using k2 = upload(backend, new Float32Array(4).fill(2), [1, 2, 1, 2]);
      await expect(cache.updateAndFetch(k2, k2)).rejects.toThrow(CapacityError);
      await expect(cache.updateAndFetch(k2, k2)).rejects.toThrow(/at most 10 tokens per sequence.*sequence 0: 9 held \+ 2 new = 11/);
      expect(cache.lengths).toEqual([9]);
    });
  });

  it('refuses bad input with a named error and leaves the cache unchanged', async () => {
    const backend = getBackend();
    const [B, H, D] = [2, 2, 4];
    await withoutLeaks(backend, async () => {
      using cache = new ContiguousKVCache(backend, { batchSize: B, kvHeads: H, keyDim: D, step: 4, maxCapacity: 8 });
      using k = upload(backend, new SeededRandom(1).normalArray(B * 3 * H * D), [B, 3, H, D]);
      await cache.updateAndFetch(k, k);
      const snapshot = async (): Promise<unknown> => ({
        lengths: cache.lengths,
        nbytes: cache.nbytes,
        allocated: cache.allocatedTokens,
        keys: await take(cache.readKeys()),
        values: await take(cache.readValues()),
      });
      const before = await snapshot();
      const f = (shape: number[]): ReturnType<typeof upload> => upload(backend, new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(9), shape);
      using wrongBatch = f([3, 1, H, D]);
      using wrongHeads = f([B, 1, H + 1, D]);
      using wrongDim = f([B, 1, H, D + 1]);
      using rank3 = f([B, 1, H * D]);
      using good = f([B, 1, H, D]);
      using goodLong = f([B, 6, H, D]);
      using ints = tensor(backend, new Int32Array(B * H * D), [B, 1, H, D], { dtype: 'i32' });
      using quantised = await cast(good, 'int8');
      await expect(cache.updateAndFetch(wrongBatch, wrongBatch)).rejects.toThrow(ShapeError);
      await expect(cache.updateAndFetch(wrongHeads, wrongHeads)).rejects.toThrow(ShapeError);
      await expect(cache.updateAndFetch(wrongDim, wrongDim)).rejects.toThrow(/expected k of shape \[2, S, 2, 4\]/);
      await expect(cache.updateAndFetch(rank3, rank3)).rejects.toThrow(ShapeError);
      await expect(cache.updateAndFetch(good, wrongDim)).rejects.toThrow(/expected v of shape \[2, 1, 2, 4\]/);
      await expect(cache.updateAndFetch(good, null)).rejects.toThrow(ShapeError);
      await expect(cache.updateAndFetch(ints, good)).rejects.toThrow(DTypeError);
      await expect(cache.updateAndFetch(quantised, good)).rejects.toThrow(DTypeError);
      await expect(cache.updateAndFetch(goodLong, goodLong)).rejects.toThrow(CapacityError);
      expect(() => cache.truncate(-1)).toThrow(CapacityError);
      expect(() => cache.truncate(4)).toThrow(/expected a length in \[0, 3\] for sequence 0/);
      expect(() => cache.truncate(1.5)).toThrow(CapacityError);
      expect(() => cache.truncate([1])).toThrow(ShapeError);
      expect(() => cache.truncate([1, 5])).toThrow(CapacityError);
      expect(await snapshot()).toEqual(before);
    });
  });

  it('refuses a second update while one is in flight, and any use after dispose', async () => {
    const backend = getBackend();
    await withoutLeaks(backend, async () => {
      const cache = new ContiguousKVCache(backend, { batchSize: 1, kvHeads: 1, keyDim: 2 });
      using k = upload(backend, new Float32Array(2), [1, 1, 1, 2]);
      const first = cache.updateAndFetch(k, k);
      await expect(cache.updateAndFetch(k, k)).rejects.toThrow(ConfigError);
      expect(() => cache.truncate(0)).toThrow(ConfigError);
      await first;
      expect(cache.lengths).toEqual([1]);
      cache.dispose();
      cache.dispose();
      await expect(cache.updateAndFetch(k, k)).rejects.toThrow(/a live cache/);
    });
  });

  it('validates its options', () => {
    const backend = getBackend();
    expect(() => new ContiguousKVCache(backend, { batchSize: 0, kvHeads: 1, keyDim: 2 })).toThrow(ConfigError);
    expect(() => new ContiguousKVCache(backend, { batchSize: 1, kvHeads: 1.5, keyDim: 2 })).toThrow(ConfigError);
    expect(() => new ContiguousKVCache(backend, { batchSize: 1, kvHeads: 1, keyDim: 96, dtype: 'fp8e4m3', blockSize: 64 })).toThrow(/scale block dividing the key row width 96/);
    expect(() => new ContiguousKVCache(backend, { batchSize: 1, kvHeads: 1, keyDim: 8, values: 'keyPrefix' })).toThrow(/valueDim to be a positive integer/);
    expect(() => new ContiguousKVCache(backend, { batchSize: 1, kvHeads: 1, keyDim: 8, values: 'keyPrefix', valueDim: 9 })).toThrow(ConfigError);
    expect(() => new ContiguousKVCache(backend, { batchSize: 1, kvHeads: 1, keyDim: 8, initialCapacity: 9, maxCapacity: 8 })).toThrow(ConfigError);
    // @ts-expect-error: a dtype the cache cannot store
    expect(() => new ContiguousKVCache(backend, { batchSize: 1, kvHeads: 1, keyDim: 8, dtype: 'i32' })).toThrow(DTypeError);
  });

  it('allocates initialCapacity up front and frees everything on dispose', () => {
    const backend = getBackend();
    const before = backend.memory();
    const cache = new ContiguousKVCache(backend, { batchSize: 2, kvHeads: 2, keyDim: 8, initialCapacity: 40, step: 32 });
    expect(cache.allocatedTokens).toBe(40);
    expect(cache.view().lengths).toEqual([0, 0]);
    expect(cache.nbytes).toBe(2 * 40 * 2 * 8 * 4 * 2);
    expect(backend.memory().bytesAllocated - before.bytesAllocated).toBe(cache.nbytes);
    cache.dispose();
    expect(backend.memory()).toEqual(before);
  });
});
