// The heap's resident arrays: the CpuBackend's large f32 tensors live in its shared WebAssembly
// memory (kernels read them in place), stay valid when the memory grows, are zero-filled when a
// region is reused, and give their bytes back when the last reference goes. Its threads share
// work through atomics on it.
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../backend.js';
import type { Tensor } from '../../tensor.js';
import { linear, matmul, reshape, softmax, tensor, zeros } from '../../ops/index.js';
import * as ref from '../../testing/fixtures/reference64.js';
import { FunctionBuilder, assembleModule, block, br, brIf, forRange, get, i32, loop, set } from './emit.js';
import { WasmHeap } from './heap.js';

const MIB = 2 ** 20;

describe('resident arrays', () => {
  it('holds large f32 tensors of a threaded CpuBackend in the heap, and frees them on dispose', async () => {
    const backend = new CpuBackend({ threads: 2 });
    const heap = backend.wasm;
    if (!heap) throw new Error(`no WebAssembly SIMD: ${backend.wasmUnavailable ?? ''}`);
    expect(heap.shared, backend.threadsUnavailable ?? '').toBe(true);
    try {
      const values = Float32Array.from({ length: MIB / 4 }, (_, i) => i);
      const big = tensor(backend, values, [MIB / 4]);
      const small = tensor(backend, values.subarray(0, 1000), [1000]);
      expect(heap.byteOffsetOf(backend.view(big))).not.toBeNull();
      expect(heap.byteOffsetOf(backend.view(small))).toBeNull();
      expect(heap.residentBytes()).toBe(MIB);
      // growth (scratch regions taken beyond the current size) leaves the view valid
      const scratch = heap.alloc(64 * MIB, 'test');
      expect(await big.data()).toEqual(values);
      scratch.release();
      // reshapes share the storage: the region goes when the last reference does
      const view = reshape(big, [2, MIB / 8]);
      big.dispose();
      expect(heap.residentBytes()).toBe(MIB);
      view.dispose();
      expect(heap.residentBytes()).toBe(0);
      // a reused region comes back zero-filled
      const z = zeros(backend, [MIB / 4]);
      expect(heap.byteOffsetOf(backend.view(z))).not.toBeNull();
      expect((await z.data()).every((x) => x === 0)).toBe(true);
      z.dispose();
      small.dispose();
      expect(heap.liveBytes()).toBe(0);
    } finally {
      await backend.dispose();
    }
  });

  it('MatMul, Linear and Softmax write their whole result into a reused region that is not zero-filled first', async () => {
    const backend = new CpuBackend({ threads: 2 });
    const heap = backend.wasm;
    if (!heap) throw new Error(`no WebAssembly SIMD: ${backend.wasmUnavailable ?? ''}`);
    try {
      // each result takes the region a NaN-filled tensor of its size just gave back (first fit):
      // a value the kernel failed to write would stay NaN
      const intoNaNs = async (count: number, run: () => Promise<Tensor>): Promise<Tensor> => {
        const nan = tensor(backend, new Float32Array(count).fill(Number.NaN), [count]);
        const at = heap.byteOffsetOf(backend.view(nan));
        nan.dispose();
        const result = await run();
        expect(heap.byteOffsetOf(backend.view(result)), 'the result reuses the NaN region').toBe(at);
        return result;
      };
      const [M, K, N] = [300, 64, 1000]; // 1.2 MB result: resident; M, N not multiples of 4 × 8 tiles
      const a = Float32Array.from({ length: M * K }, (_, i) => Math.sin(i));
      const b = Float32Array.from({ length: K * N }, (_, i) => Math.cos(i));
      using ta = tensor(backend, a, [M, K]);
      using tb = tensor(backend, b, [K, N]);
      using tbt = tensor(backend, b, [N, K]);
      using mm = await intoNaNs(M * N, () => matmul(ta, tb));
      expect(ref.firstMismatch(await mm.data(), ref.matmul64(a, [M, K], b, [K, N], false, false))).toBe(-1);
      using lin = await intoNaNs(M * N, () => linear(ta, tbt));
      expect(ref.firstMismatch(await lin.data(), ref.matmul64(a, [M, K], b, [N, K], false, true))).toBe(-1);
      const x = Float32Array.from({ length: 512 * 1023 }, (_, i) => Math.sin(0.37 * i) * 4);
      using tx = tensor(backend, x, [512, 1023]); // rows of 1023: a tail lane per row
      using sm = await intoNaNs(x.length, () => softmax(tx));
      expect(ref.firstMismatch(await sm.data(), ref.softmax64(x, [512, 1023], 1, null, null))).toBe(-1);
    } finally {
      await backend.dispose();
    }
  });

  it('keeps readable memory past the last region, so a kernel reads the heap\'s last operand in place', () => {
    const heap = new WasmHeap({ shared: true });
    const region = heap.alloc(heap.memory.buffer.byteLength, 'test'); // would end exactly at the memory's end
    expect(heap.memory.buffer.byteLength).toBeGreaterThanOrEqual(region.byteOffset + region.byteLength + 64);
    const values = heap.f32.subarray(region.index, region.index + region.byteLength / 4);
    expect(heap.operandAt(values, 0, values.length, () => { throw new Error('copied'); }, 16)).toBe(region.byteOffset);
    region.release();
  });

  it('an unshared heap (one thread) holds none: its buffer detaches when it grows', () => {
    const heap = new WasmHeap();
    expect(heap.allocResident(MIB, 'test')).toBeNull();
    const backend = new CpuBackend({ threads: 1 });
    const big = tensor(backend, new Float32Array(MIB / 2), [MIB / 2]);
    expect(backend.wasm?.byteOffsetOf(backend.view(big))).toBeNull();
    big.dispose();
  });
});

describe('atomics on the shared heap', () => {
  it('i32.atomic_rmw_add hands each index of a shared counter to exactly one thread', async () => {
    const backend = new CpuBackend({ threads: 2 });
    const heap = backend.wasm;
    const pool = backend.wasmThreads;
    if (!heap || !pool) throw new Error(`no threads: ${backend.threadsUnavailable ?? ''}`);
    try {
      // take(counter, n, out): until the counter passes n, out[next] += 1 and spin a little
      const kernel = await heap.module('test/atomic-take', (memory) => {
        const f = new FunctionBuilder('take');
        const counter = f.param('i32');
        const n = f.param('i32');
        const out = f.param('i32');
        const next = f.local('i32');
        const spin = f.local('i32');
        const at = i32.add(get(out), i32.mul(get(next), i32.const(4)));
        f.body(
          block(
            loop(
              set(next, i32.atomic_rmw_add(get(counter), i32.const(1))),
              brIf(1, i32.ge_s(get(next), get(n))),
              i32.store(at, i32.add(i32.load(at), i32.const(1))),
              forRange(spin, i32.const(0), i32.const(200), 1),
              br(0),
            ),
          ),
        );
        return assembleModule(memory, [f]);
      });
      const n = 20_000;
      const region = heap.alloc(4 * (n + 1), 'test');
      const i32View = heap.i32;
      i32View.fill(0, region.index, region.index + n + 1);
      const counter = region.byteOffset + 4 * n;
      await pool.run(kernel, 'take', [[[counter, n, region.byteOffset]], [[counter, n, region.byteOffset]]]);
      const taken = heap.i32.subarray(region.index, region.index + n);
      expect(taken.every((x) => x === 1)).toBe(true);
      expect(heap.i32[region.index + n]).toBe(n + 2); // each thread's last add found the queue empty
      region.release();
    } finally {
      await backend.dispose();
    }
  });
});
