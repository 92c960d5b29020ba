// The heap's resident arrays: the CpuBackend's large f32 tensors live in its shared WebAssembly
// memory (kernels read them in place), stay valid when the memory grows, are zero-filled when a
// region is reused, and give their bytes back when the last reference goes.
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../backend.js';
import { reshape, tensor, zeros } from '../../ops/index.js';
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

  it('an unshared heap (one thread) holds none: its buffer detaches when it grows', () => {
    const heap = new WasmHeap();
    expect(heap.allocResident(MIB, 'test')).toBeNull();
    const backend = new CpuBackend({ threads: 1 });
    const big = tensor(backend, new Float32Array(MIB / 2), [MIB / 2]);
    expect(backend.wasm?.byteOffsetOf(backend.view(big))).toBeNull();
    big.dispose();
  });
});
