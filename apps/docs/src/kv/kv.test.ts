import { CpuBackend, createBackend } from '@attnkit/tensor-core';
import { describe, expect, it } from 'vitest';
import { calculatorRows } from './calculator.js';
import { formatBytes, formatCount } from './format.js';
import { type CacheLayout, bytesPerTokenPerLayer, elementsPerTokenPerLayer } from './layouts.js';
import { expectedBytes, measureBytesPerTokenPerLayer } from './measure.js';
import { MODEL_PRESETS, presetRows, standardRows } from './models.js';

const v3 = MODEL_PRESETS.find((p) => p.id === 'deepseek-v3');
if (!v3) throw new Error('no DeepSeek-V3 preset');

describe('spec §5: DeepSeek-V3, per token per layer and over 61 layers', () => {
  // [label prefix, elements / token / layer, × 61 layers, bf16 bytes / token (all layers)]
  const SPEC: readonly [string, number, number | null, string][] = [
    ["MHA with V3's head dims", 40960, 2498560, '4.77 MiB'],
    ['MHA, 128 heads × 128', 32768, 1998848, '3.81 MiB'],
    ['GQA, 8 kv heads × 128', 2048, 124928, '244 KiB'],
    ['MQA, 1 kv head, K 192 / V 128', 320, 19520, '38.1 KiB'],
    ['MLA', 576, 35136, '68.6 KiB'],
    ['DSA (MLA + indexer key 128)', 704, 42944, '83.9 KiB'],
    ['DSA, deployed fp8', 704, 42944, '46.9 KiB'],
    ['NSA (paper model', 1360, null, '—'],
  ];
  const table = calculatorRows(presetRows(v3), { dtype: 'bf16', tokens: 1, batch: 1 });

  it('has exactly the spec rows, in order', () => {
    expect(table.map((r) => SPEC.findIndex(([label]) => r.row.label.startsWith(label)))).toEqual(SPEC.map((_, i) => i));
  });

  for (const [label, elements, allLayers, bf16] of SPEC) {
    it(label, () => {
      const row = table.find((r) => r.row.label.startsWith(label));
      expect(row?.elementsPerLayer).toBe(elements);
      expect(row?.elementsAllLayers).toBe(allLayers);
      expect(row?.text.bytesPerToken).toBe(bf16);
    });
  }

  it('deployed fp8 DSA is (656 + 132) · 61 = 48 068 bytes per token', () => {
    const row = table.find((r) => r.row.label.startsWith('DSA, deployed fp8'));
    expect(row?.bytesPerLayer).toBe(656 + 132);
    expect(row?.bytesPerToken).toBe(48068);
  });

  it('MLA is 4.5 × 128: the cache of GQA with 2.25 groups (the DeepSeek-V2 comparison)', () => {
    expect(elementsPerTokenPerLayer({ variant: 'MLA', latentDim: 512, ropeDim: 64 }) / 128).toBe(4.5);
  });

  it('MLA caches 71× less than its naive (expanded) form', () => {
    expect(Math.round(40960 / 576)).toBe(71);
  });
});

describe('bytes per element and block scales', () => {
  const gqa: CacheLayout = { variant: 'GQA', kvHeads: 8, keyDim: 128, valueDim: 128 };
  it('f32 / f16 / bf16 are 4 / 2 / 2 bytes per value', () => {
    expect(bytesPerTokenPerLayer(gqa, 'f32')).toBe(2048 * 4);
    expect(bytesPerTokenPerLayer(gqa, 'f16')).toBe(2048 * 2);
    expect(bytesPerTokenPerLayer(gqa, 'bf16')).toBe(2048 * 2);
  });
  it("fp8 and int8 add one f32 scale per block of each row, with kvcache's default blocks", () => {
    // 16 rows of 128: 2048 codes + 16 scales
    expect(bytesPerTokenPerLayer(gqa, 'fp8e4m3')).toBe(2048 + 16 * 4);
    expect(bytesPerTokenPerLayer(gqa, 'int8')).toBe(2048 + 16 * 4);
    // a 192-wide key row has blocks of 64 (the largest power of two dividing it): 3 scales
    expect(bytesPerTokenPerLayer({ variant: 'MQA', kvHeads: 1, keyDim: 192, valueDim: 128 }, 'fp8e4m3')).toBe(320 + (3 + 1) * 4);
    // MLA's one 576-wide [c ‖ k_pe] row: blocks of 64, 9 scales
    expect(bytesPerTokenPerLayer({ variant: 'MLA', latentDim: 512, ropeDim: 64 }, 'fp8e4m3')).toBe(576 + 9 * 4);
    // narrower than 128: one block per row
    expect(bytesPerTokenPerLayer({ variant: 'MQA', kvHeads: 1, keyDim: 64, valueDim: 64 }, 'int8')).toBe(128 + 2 * 4);
  });
  it('NSA amortises one compressed K/V per stride d', () => {
    expect(elementsPerTokenPerLayer({ variant: 'NSA', kvHeads: 4, keyDim: 192, valueDim: 128, blockLength: 32, stride: 16 })).toBe(1360);
  });
});

describe('measured on a gpu.js backend', () => {
  it('allocates what its storage format predicts (16-bit values in 32-bit words), the CPU backend the spec bytes', async () => {
    const { backend } = await createBackend({ prefer: 'gpujs-cpu' });
    const cpu = new CpuBackend();
    try {
      const rows = MODEL_PRESETS.flatMap((p) => presetRows(p));
      for (const dtype of ['f32', 'bf16', 'fp8e4m3'] as const) {
        for (const row of rows) {
          const m = await measureBytesPerTokenPerLayer(backend, row.layout, dtype);
          expect(m.bytes, `${row.label} in ${dtype}`).toBe(m.expected);
          expect(expectedBytes(cpu, row.layout, dtype), `${row.label} in ${dtype} on cpu`).toBe(bytesPerTokenPerLayer(row.layout, dtype));
        }
      }
      const gqa = { variant: 'GQA', kvHeads: 8, keyDim: 128, valueDim: 128 } as const;
      expect((await measureBytesPerTokenPerLayer(backend, gqa, 'bf16')).bytes).toBe(2 * bytesPerTokenPerLayer(gqa, 'bf16'));
      expect(backend.memory().liveBuffers).toBe(0);
    } finally {
      await backend.dispose();
      await cpu.dispose();
    }
  });
});

describe('measured on the CPU backend', () => {
  it('every row of every preset, in every dtype, allocates what the arithmetic says (kvcache caches where they exist)', async () => {
    const backend = new CpuBackend();
    const rows = MODEL_PRESETS.flatMap((p) => presetRows(p));
    for (const dtype of ['f32', 'f16', 'bf16', 'int8', 'fp8e4m3'] as const) {
      for (const row of rows) {
        const measured = await measureBytesPerTokenPerLayer(backend, row.layout, dtype);
        expect(measured.bytes, `${row.label} in ${dtype}`).toBe(bytesPerTokenPerLayer(row.layout, dtype));
        expect(measured.expected, `${row.label} in ${dtype}: the CPU stores every dtype compactly`).toBe(measured.bytes);
      }
    }
    expect(backend.memory()).toEqual({ bytesAllocated: 0, liveBuffers: 0, liveTensors: 0 });
    expect((await measureBytesPerTokenPerLayer(backend, { variant: 'GQA', kvHeads: 8, keyDim: 128, valueDim: 128 }, 'bf16')).by).toBe('contiguous');
    expect((await measureBytesPerTokenPerLayer(backend, { variant: 'DSA', latentDim: 512, ropeDim: 64, indexDim: 128 }, 'bf16')).by).toBe('mla-latent + indexer-keys');
    expect((await measureBytesPerTokenPerLayer(backend, { variant: 'NSA', kvHeads: 4, keyDim: 192, valueDim: 128, blockLength: 32, stride: 16 }, 'bf16'))).toEqual({
      bytes: 1360 * 2,
      expected: 1360 * 2,
      by: 'nsa',
    });
    await backend.dispose();
  });
});

describe('presets', () => {
  it('every preset has a published row and a source', () => {
    for (const p of MODEL_PRESETS) {
      expect(presetRows(p).filter((r) => r.published), p.id).toHaveLength(1);
      expect(presetRows(p).find((r) => r.published)?.layout.variant, p.id).toBe(p.attention);
      expect(p.sources.length, p.id).toBeGreaterThan(0);
    }
  });

  it('published configurations (elements per token per layer)', () => {
    const published = (id: string): number => {
      const p = MODEL_PRESETS.find((m) => m.id === id);
      const row = p && presetRows(p).find((r) => r.published);
      if (!row) throw new Error(`no published row for ${id}`);
      return elementsPerTokenPerLayer(row.layout);
    };
    expect(published('deepseek-v3')).toBe(576);
    expect(published('deepseek-v3.2-exp')).toBe(704);
    expect(published('deepseek-v2-lite')).toBe(576);
    expect(published('llama-3-70b')).toBe(2 * 8 * 128);
    expect(published('llama-3-8b')).toBe(2 * 8 * 128);
    expect(published('qwen2.5-72b')).toBe(2 * 8 * 128);
    expect(published('qwen2.5-7b')).toBe(2 * 4 * 128);
    expect(published('mistral-7b')).toBe(2 * 8 * 128);
    expect(published('llama-2-7b')).toBe(2 * 32 * 128);
    expect(published('falcon-7b')).toBe(2 * 64);
    expect(published('nsa-paper')).toBe(1360);
  });

  it("Llama-2-7B's MHA cache is the classic 0.5 MiB per token in bf16", () => {
    const p = MODEL_PRESETS.find((m) => m.id === 'llama-2-7b');
    if (!p) throw new Error('no llama-2-7b');
    const [row] = calculatorRows(presetRows(p).filter((r) => r.published), { dtype: 'bf16', tokens: 4096, batch: 1 });
    expect(row?.bytesPerToken).toBe(512 * 1024);
    expect(row?.text.bytesTotal).toBe('2 GiB');
  });

  it("Mistral-7B's rolling buffer holds at most its 4096-token window", () => {
    const p = MODEL_PRESETS.find((m) => m.id === 'mistral-7b');
    if (!p) throw new Error('no mistral-7b');
    const window = p.config.slidingWindow;
    const [row] = calculatorRows(presetRows(p).filter((r) => r.published), { dtype: 'bf16', tokens: 32768, batch: 1, ...(window ? { slidingWindow: window } : {}) });
    expect(row?.tokensHeld).toBe(4096);
    expect(row?.bytesTotal).toBe(4096 * 32 * 4096);
  });

  it('standard rows put the published variant first and skip MLA/DSA without their sizes', () => {
    const rows = standardRows('GQA', { layers: 32, heads: 32, kvHeads: 8, keyDim: 128, valueDim: 128, kvLoraRank: 0, ropeDim: 0, indexHeadDim: 0 });
    expect(rows.map((r) => r.layout.variant)).toEqual(['GQA', 'MHA', 'MQA', 'NSA']);
  });
});

describe('formatting', () => {
  it('groups digits like the spec', () => {
    expect(formatCount(40960)).toBe('40\u202f960');
    expect(formatCount(2498560)).toBe('2\u202f498\u202f560');
    expect(formatCount(576)).toBe('576');
    expect(formatCount(1360)).toBe('1\u202f360');
    expect(formatCount(127.5)).toBe('127.5');
  });
  it('binary units to three significant digits', () => {
    expect(formatBytes(70272)).toBe('68.6 KiB');
    expect(formatBytes(4997120)).toBe('4.77 MiB');
    expect(formatBytes(249856)).toBe('244 KiB');
    expect(formatBytes(1023.9 * 1024)).toBe('1 MiB');
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(2 ** 31)).toBe('2 GiB');
  });
});
