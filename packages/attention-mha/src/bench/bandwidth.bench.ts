// The machine's memory bandwidth, measured the way decode reads K/V: a WebAssembly SIMD loop
// summing f32x4 loads over 512 MiB (four independent accumulators, so the loads, not the adds,
// set the pace) on the CPU backend's shared heap, on the calling thread alone and split over its
// worker threads; and a JavaScript `Float32Array.set` copy of 256 MiB (what the kernel did per
// decode step before K/V lived in the heap). Decode's GB/s is read against these.

import { type CpuBackend, wasm } from '@attnkit/tensor-core';

const { FunctionBuilder, assembleModule, brIf, f32x4, get, i32, loop, set, v128 } = wasm;

const READ_BYTES = 512 * 2 ** 20;
const CALL_BYTES = 4 * 2 ** 20;

export interface Bandwidth {
  readonly label: string;
  readonly gbPerS: number;
}

/** (p, bytes, out): out ← Σ of the f32 values in [p, p + bytes), bytes a multiple of 64. */
function buildReadModule(memory: wasm.MemoryImport): Uint8Array<ArrayBuffer> {
  const f = new FunctionBuilder('readSum');
  const p = f.param('i32');
  const bytes = f.param('i32');
  const out = f.param('i32');
  const end = f.local('i32');
  const acc = [f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128')] as const;
  f.body(
    set(end, i32.add(get(p), get(bytes))),
    loop(
      ...acc.map((a, i) => set(a, f32x4.add(get(a), v128.load(get(p), 16 * i)))),
      set(p, i32.add(get(p), i32.const(64))),
      brIf(0, i32.lt_s(get(p), get(end))),
    ),
    v128.store(get(out), f32x4.add(f32x4.add(get(acc[0]), get(acc[1])), f32x4.add(get(acc[2]), get(acc[3])))),
  );
  return assembleModule(memory, [f]);
}

const best = async (runs: number, f: () => Promise<void> | void): Promise<number> => {
  let ms = Infinity;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    await f();
    ms = Math.min(ms, performance.now() - t0);
  }
  return ms;
};

/** Read bandwidth on 1 and on all of the backend's threads, and a JavaScript copy's. */
export async function measureBandwidth(backend: CpuBackend): Promise<Bandwidth[]> {
  const heap = backend.wasm;
  if (!heap) return [];
  const kernel = await heap.module('bench/read-sum', buildReadModule);
  const region = heap.alloc(READ_BYTES + 64 * 8, 'bandwidth');
  try {
    heap.f32.fill(1, region.index, region.index + READ_BYTES / 4);
    const threads = backend.wasmThreads?.size ?? 1;
    const calls = (parts: number): number[][][] =>
      Array.from({ length: parts }, (_, t) => {
        const list: number[][] = [];
        const from = (READ_BYTES / parts) * t;
        for (let o = from; o < from + READ_BYTES / parts; o += CALL_BYTES) list.push([region.byteOffset + o, CALL_BYTES, region.byteOffset + READ_BYTES + 64 * t]);
        return list;
      });
    const read = wasm.exported<(...a: number[]) => void>(kernel.instance, 'readSum');
    const one = await best(5, () => {
      for (const args of calls(1)[0] ?? []) read(...args);
    });
    const results: Bandwidth[] = [{ label: 'wasm f32x4 read, 1 thread', gbPerS: READ_BYTES / one / 1e6 }];
    const pool = backend.wasmThreads;
    if (pool && threads > 1) {
      const all = await best(5, () => pool.run(kernel, 'readSum', calls(threads)));
      results.push({ label: `wasm f32x4 read, ${threads} threads`, gbPerS: READ_BYTES / all / 1e6 });
    }
    const src = new Float32Array(READ_BYTES / 8).fill(1);
    const dst = new Float32Array(READ_BYTES / 8);
    const copy = await best(5, () => dst.set(src));
    // a copy reads and writes each byte: counted once, as decode counts the K/V it reads
    results.push({ label: 'JavaScript Float32Array.set copy (bytes copied)', gbPerS: READ_BYTES / 2 / copy / 1e6 });
    return results;
  } finally {
    region.release();
  }
}
