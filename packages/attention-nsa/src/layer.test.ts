// The layer's side of the NSA cache contract: φ over a batch of completed blocks, and a cache
// whose block geometry disagrees with the layer's is refused before it is touched.
import { ConfigError, CpuBackend, ShapeError, type Tensor, tensor } from '@attnkit/tensor-core';
import { loadGoldenCases } from '@attnkit/testkit';
import { nativeSparseAttention } from './nsa.js';
import { describe, expect, it } from 'vitest';
import { expectGolden, loadNSACase, required } from './testing/fixtures/golden-case.js';
import { NSACache } from '@attnkit/kvcache';

const cases = loadGoldenCases().filter((c) => c.variant === 'nsa');

describe('NativeSparseAttention.compress', () => {
  for (const name of ['nsa_mlp_phi', 'nsa_paper_blocks']) {
    it(`turns ${name}'s blocks, batched across sequences, into its k_cmp and v_cmp`, async () => {
      const c = required(cases.find((x) => x.name === name));
      const backend = new CpuBackend();
      using l = loadNSACase(c, backend);
      const { cmpBlock: len, cmpStride: d, nKvHeads: Hkv, headDim: D, vHeadDim: Dv } = l.nsa.config;
      const B = c.number('B');
      const N = c.number('n_cmp_blocks');
      const T = c.number('kv_len');
      // every block of every sequence, ordered by sequence then block, as the cache batches them
      const blocks = (data: Float32Array, C: number): Float32Array => {
        const out = new Float32Array(B * N * len * Hkv * C);
        for (let b = 0; b < B; b++) {
          for (let i = 0; i < N; i++) {
            const src = (b * T + i * d) * Hkv * C;
            out.set(data.subarray(src, src + len * Hkv * C), (b * N + i) * len * Hkv * C);
          }
        }
        return out;
      };
      const sequences = Array.from({ length: B * N }, (_, n) => Math.floor(n / N));
      const blockIndices = Array.from({ length: B * N }, (_, n) => n % N);
      const { keys, values } = await l.nsa.compress({
        keys: l.upload(blocks(c.tensor('k').data, D), [B * N, len, Hkv, D]),
        values: l.upload(blocks(c.tensor('v').data, Dv), [B * N, len, Hkv, Dv]),
        sequences,
        blockIndices,
      });
      using k = keys;
      using v = values;
      expect(k.shape).toEqual([B * N, Hkv, D]);
      expect(v.shape).toEqual([B * N, Hkv, Dv]);
      expectGolden(c, 'k_cmp', await k.data(), c.tensor('k_cmp').data);
      expectGolden(c, 'v_cmp', await v.data(), c.tensor('v_cmp').data);
    });
  }

  it('refuses blocks of another length', async () => {
    const c = required(cases.find((x) => x.name === 'nsa_paper_blocks'));
    const backend = new CpuBackend();
    using l = loadNSACase(c, backend);
    const wrong = l.upload(new Float32Array(2 * 16 * 2 * 32), [2, 16, 2, 32]);
    await expect(l.nsa.compress({ keys: wrong, values: wrong, sequences: [0, 0], blockIndices: [0, 1] })).rejects.toThrow(ShapeError);
    await expect(l.nsa.compress({ keys: wrong, values: wrong, sequences: [0, 0], blockIndices: [0, 1] })).rejects.toThrow(/block keys of shape \[N, 32, 2, 32\]/);
  });
});

describe('NativeSparseAttention.forward with a cache', () => {
  it('refuses a cache that compresses with another l or d, before appending', async () => {
    const c = required(cases.find((x) => x.name === 'nsa_equal_blocks'));
    const backend = new CpuBackend();
    using l = loadNSACase(c, backend);
    using cache = new NSACache(backend, { batchSize: 1, kvHeads: 2, keyDim: 16, valueDim: 16, blockLength: 16, blockStride: 8, compress: l.nsa.compress });
    const row = (shape: number[]) => l.upload(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
    await expect(l.nsa.forward(row([1, 1, 4, 16]), row([1, 1, 2, 16]), row([1, 1, 2, 16]), row([1, 1, 24]), { cache })).rejects.toThrow(ConfigError);
    await expect(l.nsa.forward(row([1, 1, 4, 16]), row([1, 1, 2, 16]), row([1, 1, 2, 16]), row([1, 1, 24]), { cache })).rejects.toThrow(
      /a cache compressing blocks of l = 16, d = 16 \(the layer's\), got l = 16, d = 8/,
    );
    expect(cache.lengths).toEqual([0]);
  });
});

describe('compressed blocks from a cache', () => {
  it('reads 16-bit storage with spare capacity rows like the same values in f32', async () => {
    const c = required(cases.find((x) => x.name === 'nsa_paper_blocks'));
    const backend = new CpuBackend();
    using l = loadNSACase(c, backend);
    const [B, N, Hkv, D] = c.tensor('k_cmp').shape as [number, number, number, number];
    const spare = 5; // a cache allocates ahead: rows past N must be ignored
    const withSpare = (data: Float32Array): Float32Array => {
      const out = new Float32Array(B * (N + spare) * Hkv * D).fill(1e4);
      out.set(data);
      return out;
    };
    const f16 = (key: string) => tensor(backend, withSpare(c.tensor(key).data), [B, N + spare, Hkv, D], { dtype: 'f16' });
    using k16 = f16('k_cmp');
    using v16 = f16('v_cmp');
    using k32 = tensor(backend, await k16.data(), k16.shape);
    using v32 = tensor(backend, await v16.data(), v16.shape);
    const run = (keys: Tensor, values: Tensor) => nativeSparseAttention(l.q, l.k, l.v, l.x, l.nsa.config, l.nsa.weights, { compressed: { keys, values } });
    const a = await run(k16, v16);
    const b = await run(k32, v32);
    using outA = a.out;
    using outB = b.out;
    expect(Array.from(await outA.data())).toEqual(Array.from(await outB.data()));
  });
});
