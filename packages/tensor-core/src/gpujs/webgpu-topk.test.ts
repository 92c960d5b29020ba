import { SeededRandom, describeOnBackend } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { type WebGpuHost, isWebGpuHost } from '../kernel-host.js';
import { tensor, topK } from '../ops/index.js';
import { topKRows } from '../reference/topk.js';
import { availableBackends } from '../testing/index.js';
import { webgpuTopKDeclines } from './webgpu-topk.js';

const { available } = await availableBackends();

// The WGSL radix-select top-k against the reference's total order, on rows built to hit its
// corners: ties across digit boundaries, ±0, ±∞, NaN, rows past 65 535 values, k = N.
describeOnBackend(available, 'gpujs-webgpu', 'WGSL top-k (gpujs-webgpu)', (getBackend) => {
  const host = (): WebGpuHost => {
    const backend = getBackend();
    if (!isWebGpuHost(backend)) throw new Error('expected WebGPU access');
    return backend;
  };

  const cases: { name: string; rows: number; N: number; k: number; fill: (rng: SeededRandom, n: number) => number }[] = [
    { name: 'normal values', rows: 3, N: 1000, k: 17, fill: (rng) => rng.normal() },
    { name: 'heavy ties (8 levels)', rows: 2, N: 5000, k: 700, fill: (rng) => Math.floor(rng.next() * 8) / 4 - 1 },
    {
      name: 'specials: ±0, ±∞, NaN',
      rows: 4,
      N: 300,
      k: 300,
      fill: (rng) => [0, -0, Infinity, -Infinity, Number.NaN, 1, -1, rng.normal()][Math.floor(rng.next() * 8)] as number,
    },
    { name: 'a 70 000-key row, k = 2048 (DSA)', rows: 1, N: 70_000, k: 2048, fill: (rng) => rng.normal() },
    { name: 'k = 1 over many rows', rows: 70, N: 257, k: 1, fill: (rng) => Math.round(rng.normal() * 3) },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const backend = host();
      expect(webgpuTopKDeclines(backend.webgpu.device, c.rows, c.N, c.k)).toBeNull();
      const rng = new SeededRandom(c.N + c.k);
      const x = Float32Array.from({ length: c.rows * c.N }, (_, i) => c.fill(rng, i));
      const wantValues = new Float32Array(c.rows * c.k);
      const wantIndices = new Int32Array(c.rows * c.k);
      topKRows(x, c.N, c.k, wantValues, wantIndices);
      using input = tensor(backend, x, [c.rows, c.N]);
      const { values, indices } = await topK(input, c.k);
      try {
        expect(Array.from(await indices.dataInt())).toEqual(Array.from(wantIndices));
        expect(Array.from(await values.data())).toEqual(Array.from(wantValues));
      } finally {
        values.dispose();
        indices.dispose();
      }
    });
  }

  it('declines what it does not take, with the reason', () => {
    const { device } = host().webgpu;
    expect(webgpuTopKDeclines(device, 1, 10_000, 4096)).toMatch(/k = 4096 is above 2048/);
    expect(webgpuTopKDeclines(device, 1, 2 ** 24, 8)).toMatch(/below 2\^24/);
  });
}, { checkLeaks: true });
