// What 128-bit WebAssembly SIMD can reach on this machine, measured with kernels that do nothing
// else: the arithmetic peak (a register-only loop of 12 independent multiply-add chains, no
// loads), as mul + add and as relaxed-SIMD FMA where the engine has it; and the GEMM's 4×8
// micro-kernel on packed panels that stay in L1 (no packing, no memory traffic). The matmul's
// figure is read against these (BENCHMARKS.md), and they against the CPU's native peak.

import { FunctionBuilder, assembleModule, brIf, f32, f32x4, get, i32, loop, set, v128 } from './emit.js';
import { WasmHeap, exported } from './heap.js';
import { buildGemmModule } from './gemm.js';

export interface Ceiling {
  readonly label: string;
  readonly gflops: number;
}

const CHAINS = 12;

/** (iterations, out): acc_i ← acc_i·c + d, CHAINS chains of f32x4, then their sum to out. */
function buildPeakModule(memory: { minPages: number }, fma: boolean): Uint8Array<ArrayBuffer> {
  const f = new FunctionBuilder('peak');
  const iterations = f.param('i32');
  const out = f.param('i32');
  const acc = Array.from({ length: CHAINS }, () => f.local('v128'));
  const c = f.local('v128');
  const d = f.local('v128');
  const total = f.local('v128');
  f.body(
    set(c, f32x4.splat(f32.const(0.999999))),
    set(d, f32x4.splat(f32.const(1e-6))),
    ...acc.map((a, i) => set(a, f32x4.splat(f32.const(i)))),
    loop(
      ...acc.map((a) => set(a, fma ? f32x4.relaxed_madd(get(a), get(c), get(d)) : f32x4.add(f32x4.mul(get(a), get(c)), get(d)))),
      set(iterations, i32.sub(get(iterations), i32.const(1))),
      brIf(0, i32.gt_s(get(iterations), i32.const(0))),
    ),
    set(total, v128.const(new Array<number>(16).fill(0))),
    ...acc.map((a) => set(total, f32x4.add(get(total), get(a)))),
    v128.store(get(out), get(total)),
  );
  return assembleModule(memory, [f]);
}

const bestMs = (runs: number, f: () => void): number => {
  let ms = Infinity;
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    f();
    ms = Math.min(ms, performance.now() - t0);
  }
  return ms;
};

/** The ceilings, single-threaded (per core). */
export async function measureCeilings(): Promise<Ceiling[]> {
  const heap = new WasmHeap();
  const out = heap.alloc(64, 'ceiling');
  const results: Ceiling[] = [];
  const ITER = 20_000_000;
  for (const fma of heap.relaxedSimd ? [false, true] : [false]) {
    const peak = exported<(n: number, out: number) => void>(await heap.instance(`peak/${fma}`, (m) => buildPeakModule(m, fma)), 'peak');
    peak(1000, out.byteOffset); // tier up
    const ms = bestMs(5, () => peak(ITER, out.byteOffset));
    results.push({ label: `register-only ${fma ? 'relaxed_madd (FMA)' : 'mul + add'}, 12 chains`, gflops: (ITER * CHAINS * 8) / ms / 1e6 });
  }
  // the 4×8 micro-kernel over one packed A panel (4 × kc) and 32 B panels (kc × 8), all in L1/L2
  const kc = 256;
  const nPanels = 32;
  const a = heap.alloc(4 * 4 * kc, 'ceiling');
  const b = heap.alloc(4 * 8 * kc * nPanels, 'ceiling');
  const c = heap.alloc(4 * 4 * 8 * nPanels, 'ceiling');
  heap.f32.fill(0.5, a.index, a.index + 4 * kc);
  heap.f32.fill(0.25, b.index, b.index + 8 * kc * nPanels);
  for (const fma of heap.relaxedSimd ? [false, true] : [false]) {
    const macro = exported<(...args: number[]) => void>(await heap.instance(`gemm/${fma}`, (m) => buildGemmModule(m, fma)), 'gemm4x8');
    const call = (): void => macro(a.byteOffset, b.byteOffset, c.byteOffset, 4 * 8 * nPanels, 1, nPanels, kc, 0);
    for (let i = 0; i < 200; i++) call();
    const REPS = 2000;
    const ms = bestMs(5, () => {
      for (let i = 0; i < REPS; i++) call();
    });
    results.push({ label: `GEMM 4×8 micro-kernel, panels in cache, ${fma ? 'FMA' : 'mul + add'}`, gflops: (REPS * 2 * 4 * 8 * nPanels * kc) / ms / 1e6 });
  }
  return results;
}
