import { ConfigError, storageBytes } from '@attnkit/tensor-core';
import { describeEachBackend } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import { type KVCacheConfig, formatBytes, kvBytes, kvBytesPerToken, kvElementsPerToken, kvRowParts } from './bytes.js';
import { ContiguousKVCache } from './contiguous.js';
import { IndexerKeyCache } from './indexer.js';
import { MLALatentCache } from './mla.js';
import { NSACache } from './nsa.js';
import { BACKENDS, upload } from './testing/fixtures/harness.js';

// DeepSeek-V3: 61 layers, 128 heads, dn 128, dr 64, dv 128, kv_lora_rank 512 (spec §5).
const LAYERS = 61;

/** Spec §5, one row per line: elements / token / layer, × 61 layers, bf16 bytes / token (all layers). */
const SPEC_TABLE: readonly { row: string; config: KVCacheConfig; elements: number; allLayers: number; bf16Bytes: number; shown: string }[] = [
  { row: "MHA with V3's head dims (K 192, V 128)", config: { variant: 'mha', kvHeads: 128, headDim: 192, valueDim: 128, dtype: 'bf16' }, elements: 40_960, allLayers: 2_498_560, bf16Bytes: 4_997_120, shown: '4.77 MiB' },
  { row: 'MHA, 128 heads × 128', config: { variant: 'mha', kvHeads: 128, headDim: 128, dtype: 'bf16' }, elements: 32_768, allLayers: 1_998_848, bf16Bytes: 3_997_696, shown: '3.81 MiB' },
  { row: 'GQA, 8 kv heads × 128', config: { variant: 'gqa', kvHeads: 8, headDim: 128, dtype: 'bf16' }, elements: 2_048, allLayers: 124_928, bf16Bytes: 249_856, shown: '244 KiB' },
  { row: 'MQA, 1 kv head, K 192 / V 128', config: { variant: 'mqa', kvHeads: 1, headDim: 192, valueDim: 128, dtype: 'bf16' }, elements: 320, allLayers: 19_520, bf16Bytes: 39_040, shown: '38.1 KiB' },
  { row: 'MLA (latent c + shared k_pe)', config: { variant: 'mla', kvLoraRank: 512, ropeDim: 64, dtype: 'bf16' }, elements: 576, allLayers: 35_136, bf16Bytes: 70_272, shown: '68.6 KiB' },
  { row: 'DSA (MLA + indexer key 128)', config: { variant: 'dsa', kvLoraRank: 512, ropeDim: 64, indexDim: 128, dtype: 'bf16' }, elements: 704, allLayers: 42_944, bf16Bytes: 85_888, shown: '83.9 KiB' },
];

describe('kvBytesPerToken / kvBytes: spec §5 for DeepSeek-V3', () => {
  for (const { row, config, elements, allLayers, bf16Bytes, shown } of SPEC_TABLE) {
    it(row, () => {
      expect(kvElementsPerToken(config)).toBe(elements);
      expect(kvElementsPerToken({ ...config, layers: LAYERS })).toBe(allLayers);
      expect(kvBytesPerToken(config)).toBe(2 * elements);
      expect(kvBytesPerToken({ ...config, layers: LAYERS })).toBe(bf16Bytes);
      expect(formatBytes(kvBytesPerToken({ ...config, layers: LAYERS }))).toBe(shown);
      expect(kvBytes({ ...config, layers: LAYERS }, 1000)).toBe(1000 * bf16Bytes);
      expect(kvBytesPerToken({ ...config, dtype: 'f32' })).toBe(4 * elements);
    });
  }

  it('DSA as deployed: fp8 latent + 4 scales + bf16 rope = 656 B, fp8 indexer key + scale = 132 B; 48 068 B ≈ 46.9 KiB over 61 layers', () => {
    const deployed: KVCacheConfig = { variant: 'dsa', kvLoraRank: 512, ropeDim: 64, indexDim: 128, dtype: 'fp8e4m3', ropeDtype: 'bf16', indexDtype: 'fp8e4m3', blockSize: 128 };
    expect(kvRowParts(deployed).map((p) => [p.name, p.bytes])).toEqual([
      ['latent', 512 + 4 * 4],
      ['rope', 64 * 2],
      ['indexer key', 128 + 4],
    ]);
    expect(kvBytesPerToken({ ...deployed, variant: 'mla' })).toBe(656);
    expect(kvBytesPerToken(deployed)).toBe(656 + 132);
    expect(kvBytesPerToken({ ...deployed, layers: LAYERS })).toBe(48_068);
    expect(formatBytes(48_068)).toBe('46.9 KiB');
    expect(kvElementsPerToken(deployed)).toBe(704);
  });

  it('NSA (paper model: 4 kv heads, K 192, V 128, d = 16): 1 360 elements amortised, exact with N_cmp', () => {
    const nsa: KVCacheConfig = { variant: 'nsa', kvHeads: 4, headDim: 192, valueDim: 128, blockLength: 32, blockStride: 16, dtype: 'bf16' };
    expect(kvElementsPerToken(nsa)).toBe(1360);
    expect(kvBytesPerToken(nsa)).toBe(2720);
    expect(kvBytesPerToken({ ...nsa, layers: 30 })).toBe(81_600);
    const row = 4 * (192 + 128) * 2;
    expect(kvBytes(nsa, 31)).toBe(31 * row);
    expect(kvBytes(nsa, 32)).toBe(33 * row);
    expect(kvBytes(nsa, 300)).toBe((300 + 17) * row);
  });

  it("MLA's latent is 71× smaller than the expanded naive cache and equals GQA with 2.25 groups of 128", () => {
    const mla = kvElementsPerToken({ variant: 'mla', kvLoraRank: 512, ropeDim: 64, dtype: 'bf16' });
    const naive = kvElementsPerToken({ variant: 'mha', kvHeads: 128, headDim: 192, valueDim: 128, dtype: 'bf16' });
    expect(Math.floor(naive / mla)).toBe(71);
    expect(mla).toBe(2 * 2.25 * 128);
  });

  it('quantised storage counts one f32 scale per block', () => {
    expect(kvBytesPerToken({ variant: 'gqa', kvHeads: 8, headDim: 128, dtype: 'int8' })).toBe(2 * 8 * (128 + 4));
    expect(kvBytesPerToken({ variant: 'gqa', kvHeads: 8, headDim: 128, dtype: 'fp8e4m3', blockSize: 32 })).toBe(2 * 8 * (128 + 4 * 4));
    // One [c ‖ k_pe] row of 576 in fp8: 64-value blocks by default (MLALatentCache's layout).
    expect(kvBytesPerToken({ variant: 'mla', kvLoraRank: 512, ropeDim: 64, dtype: 'fp8e4m3' })).toBe(576 + 9 * 4);
    expect(() => kvBytesPerToken({ variant: 'mla', kvLoraRank: 512, ropeDim: 64, dtype: 'fp8e4m3', blockSize: 128 })).toThrow(ConfigError);
  });

  it('refuses inconsistent configs', () => {
    expect(() => kvBytesPerToken({ variant: 'mqa', kvHeads: 2, headDim: 64, dtype: 'bf16' })).toThrow(/kvHeads = 1 for MQA/);
    expect(() => kvBytesPerToken({ variant: 'gqa', kvHeads: 0, headDim: 64, dtype: 'bf16' })).toThrow(ConfigError);
    expect(() => kvBytes({ variant: 'gqa', kvHeads: 1, headDim: 64, dtype: 'bf16' }, -1)).toThrow(ConfigError);
    expect(() => kvBytesPerToken({ variant: 'gqa', kvHeads: 1, headDim: 64, dtype: 'bf16', layers: 0 })).toThrow(ConfigError);
    // @ts-expect-error: not a storage dtype
    expect(() => kvBytesPerToken({ variant: 'gqa', kvHeads: 1, headDim: 64, dtype: 'i32' })).toThrow(/storage dtype/);
  });

  it('formats bytes in binary units with three significant digits', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1 KiB');
    expect(formatBytes(4_997_120)).toBe('4.77 MiB');
    expect(formatBytes(5 * 2 ** 30)).toBe('5 GiB');
  });
});

describeEachBackend(BACKENDS, (name) => `live caches allocate exactly what kvBytes says, on '${name}'`, (getBackend) => {
  for (const dtype of ['f32', 'bf16', 'int8', 'fp8e4m3'] as const) {
    it(`${dtype}: contiguous GQA, MLA latent, indexer keys, NSA`, async () => {
      const backend = getBackend();
      const B = 3;
      const before = backend.memory().bytesAllocated;
      using gqa = new ContiguousKVCache(backend, { batchSize: B, kvHeads: 2, keyDim: 64, valueDim: 32, dtype, step: 32 });
      using mla = new MLALatentCache(backend, { batchSize: B, kvLoraRank: 64, ropeDim: 32, dtype, step: 32 });
      using indexer = new IndexerKeyCache(backend, { batchSize: B, keyDim: 128, dtype, step: 32 });
      using nsa = new NSACache(backend, { batchSize: B, kvHeads: 1, keyDim: 32, blockLength: 8, blockStride: 8, dtype, step: 32, compress: () => Promise.reject(new Error('not reached')) });
      using k = upload(backend, new Float32Array(B * 5 * 2 * 64).fill(1), [B, 5, 2, 64]);
      using v = upload(backend, new Float32Array(B * 5 * 2 * 32).fill(1), [B, 5, 2, 32]);
      using rows = upload(backend, new Float32Array(B * 5 * 96).fill(1), [B, 5, 1, 96]);
      using keys = upload(backend, new Float32Array(B * 5 * 128).fill(1), [B, 5, 1, 128]);
      using nk = upload(backend, new Float32Array(B * 5 * 32).fill(1), [B, 5, 1, 32]);
      await gqa.updateAndFetch(k, v);
      await mla.updateAndFetch(rows);
      await indexer.updateAndFetch(keys);
      await nsa.updateAndFetch(nk, nk);
      // Where the backend stores the dtype compactly (the cpu backend; gpu.js widens 16-bit floats
      // to f32 words and packs 8-bit codes in pairs), the caches hold exactly the spec's bytes.
      const compact = [64, 96, 128].every((w) => backend.storageBytes(dtype, w, w === 96 ? 32 : w) === storageBytes(dtype, w, w === 96 ? 32 : w));
      if (compact) {
        expect(gqa.nbytes).toBe(B * kvBytes({ variant: 'gqa', kvHeads: 2, headDim: 64, valueDim: 32, dtype }, 32));
        expect(mla.nbytes).toBe(B * kvBytes({ variant: 'mla', kvLoraRank: 64, ropeDim: 32, dtype }, 32));
        const indexerKey = kvRowParts({ variant: 'dsa', kvLoraRank: 64, ropeDim: 32, indexDim: 128, dtype }).find((p) => p.name === 'indexer key');
        expect(indexer.nbytes).toBe(B * 32 * (indexerKey?.bytes ?? NaN));
        // NSA: 32 raw rows and ⌈32/8⌉ = 4 compressed rows allocated per sequence (no block complete yet).
        expect(nsa.nbytes).toBe(B * kvBytes({ variant: 'gqa', kvHeads: 1, headDim: 32, dtype }, 32 + 4));
      } else {
        expect(gqa.nbytes).toBeGreaterThan(B * kvBytes({ variant: 'gqa', kvHeads: 2, headDim: 64, valueDim: 32, dtype }, 32));
      }
      const inputs = [k, v, rows, keys, nk].reduce((n, t) => n + t.size * 4, 0);
      expect(backend.memory().bytesAllocated - before - inputs).toBe(gqa.nbytes + mla.nbytes + indexer.nbytes + nsa.nbytes);
    });
  }
});
