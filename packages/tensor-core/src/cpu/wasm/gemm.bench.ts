// The packed GEMM alone, matmul 1024³ (or M K N from the command line) on one thread and on all
// of the backend's threads, round by round beside the FMA micro-kernel ceiling of the same
// moment (ceiling.bench.ts): on a shared machine the ceiling itself moves with the load, so a
// round's figures are read against that round's ceiling. Operands and output are resident (read
// and written in place, as the CPU backend's MatMul does); "CPU-s" is the process's CPU time
// over all threads, so on two threads it shows whether the process got two cores or one.
//
//   pnpm --filter @attnkit/tensor-core exec tsx --experimental-wasm-relaxed-simd src/cpu/wasm/gemm.bench.ts [M K N]

import { loadavg } from 'node:os';
import { CpuBackend } from '../backend.js';
import { measureCeilings } from './ceiling.bench.js';
import { wasmGemm } from './gemm.js';

const [M, K, N] = process.argv.length >= 5 ? process.argv.slice(2, 5).map(Number) : [1024, 1024, 1024];
if (!M || !K || !N) throw new Error(`usage: gemm.bench.ts [M K N], got ${process.argv.slice(2).join(' ')}`);
const ROUNDS = 6;
const CALLS = 3;
const flops = 2 * M * N * K;

const backend = new CpuBackend();
const heap = backend.wasm;
if (!heap) throw new Error(`no WebAssembly SIMD here: ${backend.wasmUnavailable ?? ''}`);
const resident = (count: number): Float32Array => {
  const r = heap.allocResident(count, 'gemm.bench');
  if (!r) throw new Error('gemm.bench needs a shared heap (threads)');
  return r.data.map(() => Math.random() - 0.5);
};
const a = resident(M * K);
const b = resident(K * N);
const out = resident(M * N);
const p = { a, aOffset: 0, b, bOffset: 0, M, N, K, transA: false, transB: false };
const variants: [string, () => Promise<void>][] = [
  ['1 thread', () => wasmGemm(heap, null, p, out, 0)],
  [`${backend.wasmThreads?.size ?? 1} threads`, () => wasmGemm(heap, backend.wasmThreads, p, out, 0)],
];

const gflops = (ms: number): number => flops / ms / 1e6;
const median = (x: readonly number[]): number => [...x].sort((u, v) => u - v)[x.length >> 1] ?? NaN;
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

for (const [, run] of variants) for (let i = 0; i < 2; i++) await run();
const all = new Map<string, { wall: number[]; cpu: number[] }>();
const ceilings: number[] = [];
console.log(`matmul ${M}×${K}·${K}×${N}, ${ROUNDS} rounds of ${CALLS} calls per variant, GFLOP/s (GFLOP per CPU-second)`);
for (let round = 0; round < ROUNDS; round++) {
  const ceiling = (await measureCeilings()).find((c) => c.label.includes('micro-kernel') && c.label.includes(heap.relaxedSimd ? 'FMA' : 'mul + add'))?.gflops ?? NaN;
  ceilings.push(ceiling);
  const line = [`ceiling ${ceiling.toFixed(1)}`];
  for (const [name, run] of variants) {
    const wall: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      await run();
      wall.push(performance.now() - t0);
      const c = process.cpuUsage(c0);
      cpu.push((c.user + c.system) / 1000);
    }
    const entry = all.get(name) ?? { wall: [], cpu: [] };
    entry.wall.push(...wall);
    entry.cpu.push(...cpu);
    all.set(name, entry);
    line.push(`${name} ${gflops(median(wall)).toFixed(1)} (${gflops(median(cpu)).toFixed(1)})`);
  }
  console.log(`round ${round}: ${line.join(' | ')} | load ${load()}`);
}
const summary = [...all].map(([name, { wall, cpu }]) => `${name} ${gflops(median(wall)).toFixed(1)} (${gflops(median(cpu)).toFixed(1)}), best ${gflops(Math.min(...wall)).toFixed(1)}`);
console.log(`median: ceiling ${median(ceilings).toFixed(1)} | ${summary.join(' | ')}`);
await backend.dispose();
