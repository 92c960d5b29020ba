import { DTypeError, ShapeError, type Tensor, add, cast, mean, tensor } from '@attnkit/tensor-core';
import { compareArrays, describeEachBackend, loadGoldenCases, SeededRandom } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { type NSACompressionBatch, type NSACompressor, NSACache, compressedCount } from './nsa.js';
import { BACKENDS, take, upload, withoutLeaks } from './testing/fixtures/harness.js';

/** φ = mean over the block, with an optional intra-block key PE [l, Hkv, D] added first (spec §4.1). */
function meanCompressor(peK: Tensor | null, calls: { sequence: number; block: number }[]): NSACompressor {
  return async (batch: NSACompressionBatch) => {
    for (const [n, sequence] of batch.sequences.entries()) calls.push({ sequence, block: batch.blockIndices[n] as number });
    let keys: Tensor;
    if (peK) {
      using withPe = await add(batch.keys, peK); // [N, l, Hkv, D] + [l, Hkv, D]
      keys = await mean(withPe, 1);
    } else {
      keys = await mean(batch.keys, 1);
    }
    return { keys, values: await mean(batch.values, 1) };
  };
}

/** Tokens [from, to) of every sequence of a [B, T, H, W] host array. */
function tokens(data: Float32Array, B: number, T: number, row: number, from: number, to: number): Float32Array {
  const out = new Float32Array(B * (to - from) * row);
  for (let b = 0; b < B; b++) out.set(data.subarray((b * T + from) * row, (b * T + to) * row), b * (to - from) * row);
  return out;
}

describeEachBackend(BACKENDS, (name) => `NSACache on '${name}'`, (getBackend) => {
  it('N_cmp(T) = ⌊(T − l)/d⌋ + 1 complete blocks, 0 below l', () => {
    expect(compressedCount(0, 32, 16)).toBe(0);
    expect(compressedCount(31, 32, 16)).toBe(0);
    expect(compressedCount(32, 32, 16)).toBe(1);
    expect(compressedCount(47, 32, 16)).toBe(1);
    expect(compressedCount(48, 32, 16)).toBe(2);
    expect(compressedCount(300, 32, 16)).toBe(17);
    expect(compressedCount(97, 16, 8)).toBe(11);
  });

  for (const name of ['nsa_paper_blocks', 'nsa_decode', 'nsa_equal_blocks', 'nsa_short']) {
    it(`maintains ${name}'s compressed blocks incrementally, each block compressed once`, async () => {
      const backend = getBackend();
      const c = loadGoldenCases().find((g) => g.name === name);
      if (!c) throw new Error(`golden case ${name} missing`);
      const k = c.tensor('k');
      const v = c.tensor('v');
      const [B, T, H, D] = k.shape as [number, number, number, number];
      const Dv = v.shape[3] as number;
      const l = c.number('cmp_block');
      const d = c.number('cmp_stride');
      const seed = 1000 + T;
      const rng = new SeededRandom(seed);
      await withoutLeaks(backend, async () => {
        let peK: Tensor | null = null;
        if (c.has('pe_k')) {
          // pe_k [Hkv, l, D] → [l, Hkv, D] so it broadcasts over [N, l, Hkv, D].
          const pe = c.tensor('pe_k').data;
          const t = new Float32Array(l * H * D);
          for (let h = 0; h < H; h++) for (let j = 0; j < l; j++) t.set(pe.subarray((h * l + j) * D, (h * l + j + 1) * D), (j * H + h) * D);
          peK = tensor(backend, t, [l, H, D]);
        }
        const calls: { sequence: number; block: number }[] = [];
        using cache = new NSACache(backend, { batchSize: B, kvHeads: H, keyDim: D, valueDim: Dv, blockLength: l, blockStride: d, step: 64, compress: meanCompressor(peK, calls) });
        let at = 0;
        let view;
        while (at < T) {
          const S = Math.min(T - at, rng.pick([1, 1, 3, 16, 37]));
          using kt = upload(backend, tokens(k.data, B, T, H * D, at, at + S), [B, S, H, D]);
          using vt = upload(backend, tokens(v.data, B, T, H * Dv, at, at + S), [B, S, H, Dv]);
          view = await cache.updateAndFetch(kt, vt);
          at += S;
          expect(view.compressed.counts, `seed ${seed}`).toEqual(new Array<number>(B).fill(compressedCount(at, l, d)));
        }
        peK?.dispose();
        const N = c.number('n_cmp_blocks');
        const expectedCalls = Array.from({ length: B }, (_, b) => Array.from({ length: N }, (_, i) => ({ sequence: b, block: i }))).flat();
        expect([...calls].sort((x, y) => x.sequence - y.sequence || x.block - y.block), `seed ${seed}`).toEqual(expectedCalls);
        expect(new Set(calls.map((x) => `${x.sequence}:${x.block}`)).size).toBe(calls.length);
        const tol = c.manifest.tolerance;
        const kc = await take(cache.readCompressedKeys());
        const vc = await take(cache.readCompressedValues());
        expect(compareArrays(kc, c.tensor('k_cmp').data, tol).pass, `seed ${seed}`).toBe(true);
        expect(compareArrays(vc, c.tensor('v_cmp').data, tol).pass, `seed ${seed}`).toBe(true);
        expect(await take(cache.readKeys())).toEqual(k.data);
      });
    });
  }

  it('truncate drops the blocks past N_cmp(T); re-appending compresses them again', async () => {
    const backend = getBackend();
    const rng = new SeededRandom(12);
    const [B, H, D, l, d] = [2, 1, 4, 4, 2];
    await withoutLeaks(backend, async () => {
      const calls: { sequence: number; block: number }[] = [];
      using cache = new NSACache(backend, { batchSize: B, kvHeads: H, keyDim: D, blockLength: l, blockStride: d, step: 4, compress: meanCompressor(null, calls) });
      using k = upload(backend, rng.normalArray(B * 10 * H * D), [B, 10, H, D]);
      await cache.updateAndFetch(k, k);
      expect(cache.compressedCounts).toEqual([4, 4]);
      using before = await cache.readCompressedKeys();
      cache.truncate([7, 3]);
      expect(cache.compressedCounts).toEqual([2, 0]);
      calls.length = 0;
      using k3 = upload(backend, rng.normalArray(B * 3 * H * D), [B, 3, H, D]);
      const view = await cache.updateAndFetch(k3, k3);
      expect(view.compressed.counts).toEqual([4, 2]);
      expect(calls).toEqual([{ sequence: 0, block: 2 }, { sequence: 0, block: 3 }, { sequence: 1, block: 0 }, { sequence: 1, block: 1 }]);
      const after = await take(cache.readCompressedKeys());
      // Sequence 0 keeps its first two blocks untouched.
      expect(after.subarray(0, 2 * D)).toEqual((await before.data()).subarray(0, 2 * D));
    });
  });

  it('a failing or malformed compress undoes the append and leaves nothing behind', async () => {
    const backend = getBackend();
    const [B, H, D, l] = [1, 1, 4, 2];
    await withoutLeaks(backend, async () => {
      let mode: 'ok' | 'throw' | 'shape' | 'dtype' = 'ok';
      const compress: NSACompressor = async (batch) => {
        if (mode === 'throw') throw new Error('compressor failed');
        const keys = await mean(batch.keys, 1);
        if (mode === 'shape') {
          keys.dispose();
          return { keys: await mean(batch.keys, 2), values: await mean(batch.values, 1) };
        }
        if (mode === 'dtype') {
          const values = await mean(batch.values, 1);
          using q = await cast(values, 'int8', { blockSize: 4 });
          values.dispose();
          return { keys, values: await cast(q, 'int8', { blockSize: 4 }) };
        }
        return { keys, values: await mean(batch.values, 1) };
      };
      using cache = new NSACache(backend, { batchSize: B, kvHeads: H, keyDim: D, blockLength: l, blockStride: l, compress });
      using k3 = upload(backend, new Float32Array(3 * D).fill(1), [B, 3, H, D]);
      await cache.updateAndFetch(k3, k3);
      const snapshot = async (): Promise<unknown> => ({
        lengths: cache.lengths,
        counts: cache.compressedCounts,
        keys: await take(cache.readKeys()),
        compressed: await take(cache.readCompressedKeys()),
      });
      const before = await snapshot();
      using k1 = upload(backend, new Float32Array(D).fill(5), [B, 1, H, D]);
      mode = 'throw';
      await expect(cache.updateAndFetch(k1, k1)).rejects.toThrow('compressor failed');
      mode = 'shape';
      await expect(cache.updateAndFetch(k1, k1)).rejects.toThrow(ShapeError);
      mode = 'dtype';
      await expect(cache.updateAndFetch(k1, k1)).rejects.toThrow(DTypeError);
      expect(await snapshot()).toEqual(before);
      mode = 'ok';
      const view = await cache.updateAndFetch(k1, k1);
      expect(view.compressed.counts).toEqual([2]);
    });
  });
});
