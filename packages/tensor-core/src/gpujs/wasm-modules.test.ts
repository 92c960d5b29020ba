// gpu.js' webasm mode assembles one WebAssembly module, with its own WebAssembly.Memory, per
// kernel and size signature. A decode loop whose cache grows every step makes new signatures at
// every step; the runtime keeps the modules of all kernels under one bound, so a long decode
// holds a bounded number of memories (browsers refuse new ones after ~100) and stays correct.
import { SeededRandom } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../cpu/backend.js';
import * as op from '../ops/index.js';
import type { Tensor } from '../tensor.js';
import { availableBackends } from '../testing/index.js';
import { expectRelative } from '../testing/fixtures/check.js';
import { createGpujsBackend } from './index.js';

const { available } = await availableBackends();
const webasm = available.some((b) => b.name === 'gpujs-webasm');

/**
 * One decode step of single-head attention over a cache that grows by a row: append the new
 * key/value rows (concat), scores q·Kᵀ [1, T], softmax, P·V [1, D], then a projection: five
 * kernels, four of them with a new size signature at every step.
 */
async function decode(steps: number, D: number, backend: CpuBackend | Awaited<ReturnType<typeof createGpujsBackend>>, onStep: (step: number) => void): Promise<Float32Array> {
  const rng = new SeededRandom(31_337);
  using w = op.tensor(backend, rng.normalArray(D * D, 0.3), [D, D]);
  let k: Tensor = op.tensor(backend, rng.normalArray(D), [1, D]);
  let v: Tensor = op.tensor(backend, rng.normalArray(D), [1, D]);
  let last: Float32Array = new Float32Array(0);
  try {
    for (let step = 1; step < steps; step++) {
      using q = op.tensor(backend, rng.normalArray(D), [1, D]);
      using kNew = op.tensor(backend, rng.normalArray(D), [1, D]);
      using vNew = op.tensor(backend, rng.normalArray(D), [1, D]);
      const k2 = await op.concat([k, kNew], 0); // [T, D]
      const v2 = await op.concat([v, vNew], 0);
      k.dispose();
      v.dispose();
      k = k2;
      v = v2;
      using scores = await op.matmul(q, k, { transposeB: true }); // [1, T]
      using probs = await op.softmax(scores);
      using mixed = await op.matmul(probs, v); // [1, D]
      using out = await op.linear(mixed, w);
      if (step === steps - 1) last = await out.data();
      onStep(step);
    }
  } finally {
    k.dispose();
    v.dispose();
  }
  return last;
}

describe.runIf(webasm)('gpujs-webasm: WebAssembly modules under a long decode', () => {
  it('300 decode steps with a growing cache hold at most the bound of modules, and agree with the CPU backend', async () => {
    const limit = 12;
    const backend = await createGpujsBackend('gpujs-webasm', { maxWasmModules: limit });
    const cpu = new CpuBackend();
    try {
      let peak = 0;
      const got = await decode(300, 8, backend, () => {
        peak = Math.max(peak, backend.wasmModules.live);
      });
      const report = backend.wasmModules;
      // gpu.js alone would keep up to 8 per kernel (40 here); the bound holds at every step
      expect(peak).toBeLessThanOrEqual(limit);
      expect(report.limit).toBe(limit);
      expect(report.assembled).toBeGreaterThan(4 * 290); // four new signatures per step
      expect(report.released).toBeGreaterThan(report.assembled - 5 * 8 - limit); // the bound, not gpu.js, released them
      const want = await decode(300, 8, cpu, () => undefined);
      expectRelative(got, want, 1e-4, 'the last step against the CPU backend');
      expect(backend.memory().liveTensors).toBe(0);
    } finally {
      await backend.dispose();
      await cpu.dispose();
    }
  }, 300_000);

  it('a kernel whose module was released runs again with the same sizes, and right', async () => {
    const backend = await createGpujsBackend('gpujs-webasm', { maxWasmModules: 2 });
    const cpu = new CpuBackend();
    try {
      const x = Float32Array.from({ length: 15 }, (_, i) => Math.sin(i));
      const softmaxOn = async (b: CpuBackend | typeof backend): Promise<Float32Array> => {
        using t = op.tensor(b, x, [3, 5]);
        using y = await op.softmax(t);
        return await y.data();
      };
      const want = await softmaxOn(cpu);
      expectRelative(await softmaxOn(backend), want, 1e-6, 'softmax before');
      // other kernels and sizes push softmax's module (its kernel's active one) out
      for (let n = 1; n < 6; n++) {
        using a = op.tensor(backend, new Float32Array(n * 4).fill(1), [n, 4]);
        using b = op.tensor(backend, new Float32Array(4 * n).fill(2), [4, n]);
        using c = await op.matmul(a, b);
        expect(await c.data()).toEqual(new Float32Array(n * n).fill(8));
      }
      expect(backend.wasmModules.released).toBeGreaterThan(0);
      expectRelative(await softmaxOn(backend), want, 1e-6, 'softmax after its module was released');
      expect(backend.wasmModules.live).toBeLessThanOrEqual(2);
    } finally {
      await backend.dispose();
      await cpu.dispose();
    }
  }, 120_000);

  it('keeps recently used signatures: a loop over the same sizes assembles nothing new', async () => {
    const backend = await createGpujsBackend('gpujs-webasm');
    try {
      await decode(6, 8, backend, () => undefined);
      const first = backend.wasmModules;
      await decode(6, 8, backend, () => undefined);
      const second = backend.wasmModules;
      expect(second.assembled).toBe(first.assembled);
      expect(second.released).toBe(0);
      expect(second.live).toBe(first.live);
    } finally {
      await backend.dispose();
    }
  }, 120_000);
});
