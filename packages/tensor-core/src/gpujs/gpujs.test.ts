// What the gpu.js backends add to the conformance suite: honest memory accounting per storage
// format, tensors split across bindings (a lowered limit keeps the test cheap), the extension
// API, WebGPU access for hand-written WGSL, and a clean dispose.
/// <reference types="@webgpu/types" />
import { SeededRandom } from '@attnkit/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CpuBackend, isCpuBackend } from '../cpu/backend.js';
import { BackendError, CapacityError, ConfigError, DTypeError, ShapeError } from '../errors.js';
import * as op from '../ops/index.js';
import type { Tensor } from '../tensor.js';
import { availableBackends } from '../testing/index.js';
import { expectRelative, expectSame, expectWithin } from '../testing/fixtures/check.js';
import * as ref from '../testing/fixtures/reference64.js';
import { firstScale, firstValue as other, scaleRows } from '../testing/fixtures/kernels.gpujs.js';
import { type GpujsBackend, type GpujsBackendName, createGpujsBackend, isGpujsBackend } from './index.js';

// An existing navigator must survive the WebGPU start: only `gpu` is added to it.
const navigatorBefore: unknown = Reflect.get(globalThis, 'navigator');
if (navigatorBefore === undefined) Object.defineProperty(globalThis, 'navigator', { value: { attnkitMarker: true }, configurable: true, writable: true });

const { available } = await availableBackends();
const gpujsNames = available.map((b) => b.name).filter((n): n is GpujsBackendName => n.startsWith('gpujs-'));
const cpu = new CpuBackend();

const rng = new SeededRandom(424_242);
const normal = (shape: readonly number[], scale = 1): Float32Array => rng.normalArray(shape.reduce((a, b) => a * b, 1), scale);

describe('gpu.js backends', () => {
  it('keeps an existing navigator and adds navigator.gpu to it', () => {
    const nav: unknown = Reflect.get(globalThis, 'navigator');
    if (!gpujsNames.includes('gpujs-webgpu') || navigatorBefore !== undefined) return;
    expect(nav).toMatchObject({ attnkitMarker: true });
    expect(typeof nav === 'object' && nav !== null && 'gpu' in nav).toBe(true);
  });
});

for (const name of gpujsNames) {
  describe(name, () => {
    let backend: GpujsBackend;
    /** The same mode with a 256-byte binding limit: anything above 64 f32 values is split. */
    let small: GpujsBackend;
    const on = (b: GpujsBackend | CpuBackend, values: ArrayLike<number>, shape: readonly number[], options?: op.TensorOptions): Tensor =>
      op.tensor(b, values, shape, options);

    beforeAll(async () => {
      backend = await createGpujsBackend(name);
      small = await createGpujsBackend(name, { maxBindingBytes: 256 });
    });
    afterAll(async () => {
      await backend.dispose();
      await small.dispose();
    });

    it('is recognised by isGpujsBackend (and the CPU backend is not)', () => {
      expect(isGpujsBackend(backend)).toBe(true);
      expect(isGpujsBackend(cpu)).toBe(false);
      expect(isCpuBackend(backend)).toBe(false);
      expect(backend.info.family).toBe('gpujs');
      expect(small.info.maxBindingBytes).toBe(256);
    });

    it('reports device bytes per storage format exactly', () => {
      const before = backend.memory();
      const delta = (): { bytes: number; buffers: number; tensors: number } => {
        const m = backend.memory();
        return { bytes: m.bytesAllocated - before.bytesAllocated, buffers: m.liveBuffers - before.liveBuffers, tensors: m.liveTensors - before.liveTensors };
      };
      const host = backend.mode !== 'webgpu';
      using f = op.zeros(backend, [3, 10]);
      expect(delta()).toEqual({ bytes: 120, buffers: 1, tensors: 1 });
      using h = op.zeros(backend, [3, 10], 'f16');
      expect(delta().bytes).toBe(240); // f16 values are widened to f32 words
      using q = op.zeros(backend, [3, 10], 'int8', 5);
      // 30 codes in 15 words (4 bytes on WebGPU, 2 on the host modes) + 6 f32 scales
      expect(delta()).toEqual({ bytes: 240 + (host ? 30 : 60) + 24, buffers: 4, tensors: 3 });
      expect([f.dtype, h.dtype, q.dtype]).toEqual(['f32', 'f16', 'int8']);
    });

    it('refuses i32 values beyond ±2^24 (kernels read integers as f32)', () => {
      expect(() => on(backend, [2 ** 24 + 1], [1], { dtype: 'i32' })).toThrow(CapacityError);
      using ok = on(backend, [-(2 ** 24), 2 ** 24], [2], { dtype: 'i32' });
      expect(ok.dtype).toBe('i32');
    });

    it('compiles each kernel once and reuses it across sizes', async () => {
      for (const n of [3, 17, 64]) {
        using x = on(backend, normal([n, n]), [n, n]);
        using y = await op.matmul(x, x);
        using s = await op.softmax(y);
        expect(s.shape).toEqual([n, n]);
      }
      const count = backend.compiledKernelCount;
      using x = on(backend, normal([5, 9]), [5, 9]);
      using y = await op.matmul(x, x, { transposeB: true });
      using s = await op.softmax(y, { scale: 2 });
      expect(s.shape).toEqual([5, 5]);
      expect(backend.compiledKernelCount).toBe(count);
    });

    it('splits tensors above the binding limit and reads them back whole', async () => {
      const values = normal([20, 12]);
      const before = small.memory();
      using w = on(small, values, [20, 12]);
      // 960 bytes of f32 in chunks of whole 48-byte rows, 5 rows (240 bytes) each
      expect(small.memory().liveBuffers - before.liveBuffers).toBe(4);
      expectSame(await w.data(), values, 'split read');
      using q = await op.cast(w, 'int8', { blockSize: 4 });
      expectRelative(await q.data(), await (await op.cast(on(cpu, values, [20, 12]), 'int8', { blockSize: 4 })).data(), 2 * ref.U, 'split cast');
    });

    it('runs linear and matmul over a split weight', async () => {
      const x = normal([3, 12]);
      const wv = normal([20, 12]);
      using w = on(small, wv, [20, 12]);
      for (const dtype of ['f32', 'bf16', 'int8', 'fp8e4m3'] as const) {
        using weight = await op.cast(w, dtype, { blockSize: 6 });
        const decoded = await weight.data();
        using y = await op.linear(on(small, x, [3, 12]), weight, on(small, normal([20]), [20]));
        expect(y.shape).toEqual([3, 20]);
        const bias = await (await op.linear(on(small, new Float32Array(12), [1, 12]), weight, on(small, new Float32Array(20), [20]))).data();
        expect(bias.every((v) => v === 0)).toBe(true);
        await expectWithin(await op.linear(on(small, x, [3, 12]), weight), ref.linear64(x, 12, decoded, 20, null), `split linear ${dtype}`);
      }
      // w is [20, 12]: as the right operand with and without a transpose
      using a = on(small, normal([3, 20]), [3, 20]);
      await expectWithin(await op.matmul(a, w), ref.matmul64(await a.data(), [3, 20], wv, [20, 12], false, false), 'split matmul');
      using at = on(small, normal([3, 12]), [3, 12]);
      await expectWithin(await op.matmul(at, w, { transposeB: true }), ref.matmul64(await at.data(), [3, 12], wv, [20, 12], false, true), 'split matmulᵀ');
    });

    it('gathers from, slices and transposes a split cache', async () => {
      const values = normal([2, 10, 8]);
      for (const dtype of ['f32', 'f16', 'int8', 'fp8e4m3'] as const) {
        using full = on(small, values, [2, 10, 8]);
        using cache = await op.cast(full, dtype, { blockSize: 4 });
        expect(small.storageOf(cache, 'test').chunks.length).toBeGreaterThan(1);
        const decoded = await cache.data();
        const idx = Int32Array.from([9, 0, 4, 7, 1, 2]);
        using rows = await op.gather(cache, on(small, idx, [2, 3], { dtype: 'i32' }), { batchDims: 1 });
        using want = await op.gather(on(cpu, decoded, [2, 10, 8]), on(cpu, idx, [2, 3], { dtype: 'i32' }), { batchDims: 1 });
        expectSame(await rows.data(), await want.data(), `gather from split ${dtype}`);
        using part = await op.slice(cache, [1, 3, 0], [1, 6, 8]);
        using partWant = await op.slice(on(cpu, decoded, [2, 10, 8]), [1, 3, 0], [1, 6, 8]);
        expectSame(await part.data(), await partWant.data(), `slice of split ${dtype}`);
      }
      using full = on(small, values, [2, 10, 8]);
      using t = await op.transpose(full, [1, 0, 2]);
      using tWant = await op.transpose(on(cpu, values, [2, 10, 8]), [1, 0, 2]);
      expectSame(await t.data(), await tWant.data(), 'transpose of split');
    });

    it('writes into a split cache in place', async () => {
      for (const dtype of ['f32', 'f16', 'int8'] as const) {
        using zero = op.zeros(small, [2, 10, 8]);
        using cache = await op.cast(zero, dtype, { blockSize: 4 });
        using zc = op.zeros(cpu, [2, 10, 8]);
        using want = await op.cast(zc, dtype, { blockSize: 4 });
        const src = normal([2, 3, 8]);
        // rows 4..6 straddle the chunk boundary at row 5
        await op.writeSlice(cache, on(small, src, [2, 3, 8]), 1, 4);
        await op.writeSlice(want, on(cpu, src, [2, 3, 8]), 1, 4);
        const rows = normal([3, 10, 8]);
        using flat = op.reshape(cache, [20, 8]);
        using flatWant = op.reshape(want, [20, 8]);
        await op.scatterRows(flat, on(small, rows.subarray(0, 24), [3, 8]), on(small, [19, 0, 5], [3], { dtype: 'i32' }));
        await op.scatterRows(flatWant, on(cpu, rows.subarray(0, 24), [3, 8]), on(cpu, [19, 0, 5], [3], { dtype: 'i32' }));
        expectRelative(await cache.data(), await want.data(), 2 * ref.U, `writes into split ${dtype}`);
      }
    });

    it('refuses a split tensor where a kernel cannot take one, naming the split', async () => {
      using x = on(small, normal([20, 12]), [20, 12]);
      await expect(op.softmax(x)).rejects.toThrow(BackendError);
      await expect(op.softmax(x)).rejects.toThrow(/split into 4 buffers by the 256-byte binding limit/);
    });

    it('runs custom kernels on tensors: compiled once per key, checked at the boundary', async () => {
      const kernel = backend.kernel('test/scale-rows', scaleRows, { params: { x: 'tensor', s: 'tensor', cols: 'int', alpha: 'float' }, rank: 2 });
      using x = on(backend, [1, 2, 3, 4, 5, 6], [2, 3]);
      using s = on(backend, [10, 100], [2]);
      using y = await kernel.run({ x, s, cols: 3, alpha: 0.5 }, { grid: [3, 2], shape: [2, 3] });
      expectSame(await y.data(), [5, 10, 15, 200, 250, 300], 'custom kernel');
      const count = backend.compiledKernelCount;
      using y2 = await backend.kernel('test/scale-rows', scaleRows, { params: { x: 'tensor', s: 'tensor', cols: 'int', alpha: 'float' }, rank: 2 }).run(
        { x, s, cols: 3, alpha: 1 },
        { grid: [3, 2], shape: [6] },
      );
      expect(backend.compiledKernelCount).toBe(count);
      expect(y2.shape).toEqual([6]);
      await expect(backend.kernel('test/scale-rows', other, { params: { x: 'tensor' } }).run({ x }, { grid: [1], shape: [1] })).rejects.toThrow(ConfigError);
      await expect(backend.kernel('test/params', scaleRows, { params: { x: 'tensor', s: 'tensor' } }).run({ x, s }, { grid: [1], shape: [1] })).rejects.toThrow(ConfigError);
      await expect(kernel.run({ x, s, cols: 3, alpha: 1 }, { grid: [3, 3], shape: [2, 3] })).rejects.toThrow(ShapeError);
      await expect(kernel.run({ x, s, cols: 2.5, alpha: 1 }, { grid: [3, 2], shape: [2, 3] })).rejects.toThrow(ConfigError);
      await expect(kernel.run({ x: on(cpu, [1], [1]), s, cols: 3, alpha: 1 }, { grid: [3, 2], shape: [2, 3] })).rejects.toThrow(BackendError);
      // quantised tensors bind their byte-pair words and, through 'scales', their block scales
      using q = await op.quantize(on(backend, [0, 254], [2]), 'int8', { blockSize: 2 });
      using sc = await backend.kernel('test/first-scale', firstScale, { params: { q: 'tensor', scales: 'scales' } }).run({ q, scales: q }, { grid: [1], shape: [1] });
      expectSame(await sc.data(), [2], 'scales binding');
      await expect(backend.kernel('test/first-scale', firstScale, { params: { q: 'tensor', scales: 'scales' } }).run({ q: x, scales: x }, { grid: [1], shape: [1] })).rejects.toThrow(
        DTypeError,
      );
    });

    it('runs every kernel in its own mode (no silent fallback to gpu.js cpu)', () => {
      expect([...backend.kernelFallbacks()]).toEqual([]);
      expect([...small.kernelFallbacks()]).toEqual([]);
    });

    if (name === 'gpujs-webgpu') {
      it('gives hand-written WGSL the device and the tensors’ buffers, ordered with gpu.js kernels', async () => {
        const webgpu = backend.webgpu;
        if (!webgpu) throw new Error('no WebGPU access on the webgpu backend');
        const device = webgpu.device;
        const pipeline = backend.cached('test/double', () =>
          device.createComputePipeline({
            layout: 'auto',
            compute: {
              module: device.createShaderModule({
                code: `@group(0) @binding(0) var<storage, read> x : array<f32>;
@group(0) @binding(1) var<storage, read_write> y : array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g : vec3<u32>) {
  if (g.x < arrayLength(&y)) { y[g.x] = 2.0 * x[g.x]; }
}`,
              }),
              entryPoint: 'main',
            },
          }),
        );
        expect(backend.cached('test/double', () => null)).toBe(pipeline);
        using x = on(backend, [1, 2, 3], [3]);
        using y = webgpu.allocate([3]);
        const encoder = device.createCommandEncoder();
        const pass = encoder.beginComputePass();
        pass.setPipeline(pipeline);
        pass.setBindGroup(
          0,
          device.createBindGroup({
            layout: pipeline.getBindGroupLayout(0),
            entries: [
              { binding: 0, resource: { buffer: webgpu.buffer(x) } },
              { binding: 1, resource: { buffer: webgpu.buffer(y) } },
            ],
          }),
        );
        pass.dispatchWorkgroups(1);
        pass.end();
        device.queue.submit([encoder.finish()]);
        // a gpu.js kernel queued after the WGSL pass sees its result
        using z = await op.affine(y, 1, 1);
        expectSame(await z.data(), [3, 5, 7], 'WGSL then gpu.js');
        using q = await op.quantize(on(backend, [1, 2, 3, 4], [4]), 'int8', { blockSize: 2 });
        expect(webgpu.scalesBuffer(q).size).toBe(8);
        expect(() => webgpu.scalesBuffer(x)).toThrow(DTypeError);
        using big = on(small, normal([20, 12]), [20, 12]);
        expect(() => small.webgpu?.buffer(big)).toThrow(BackendError);
      });
    }

    it('frees every buffer on dispose and refuses work afterwards', async () => {
      const b = await createGpujsBackend(name, { maxBindingBytes: 1024 });
      const kept = on(b, normal([30, 20]), [30, 20]);
      await op.cast(kept, 'f16');
      expect(b.memory().liveBuffers).toBeGreaterThan(1);
      await b.dispose();
      expect(b.memory()).toEqual({ bytesAllocated: 0, liveBuffers: 0, liveTensors: 0 });
      await expect(op.relu(kept)).rejects.toThrow(BackendError);
      expect(() => op.zeros(b, [2])).toThrow(BackendError);
    });
  });
}
