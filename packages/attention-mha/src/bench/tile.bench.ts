// The flash tile alone, one thread: `flashSpan` over 32 query rows × 2048 keys (packed K/V rows,
// every key visible), as an interior span (edge = 0) and as a span a mask edge crosses (edge = 1,
// the masked P·V where needed), for d = 64 and 128, FMA and mul + add builds. The best of many
// short runs, so other processes on the machine disturb it less than the end-to-end benchmark:
// the figure to compare with the wasm ceiling (tensor-core's ceiling.bench.ts, 50.7 GFLOP/s per
// core with FMA on the Zen 3 of BENCHMARKS.md).
//
//   pnpm --filter @attnkit/attention-mha exec tsx --experimental-wasm-relaxed-simd --tsconfig tsconfig.json src/bench/tile.bench.ts

import { loadavg } from 'node:os';
import { wasm } from '@attnkit/tensor-core';
import { type FlashSpan, buildFlashTileModule } from '../cpu/wasm-tile.js';

const ROWS = 32;
const KEYS = 2048;
const RUNS = 200;

async function tileThroughput(heap: wasm.WasmHeap, D: number, fma: boolean, edge: 0 | 1): Promise<number> {
  const kernel = await heap.module(`bench/flash-tile/${D}/${fma ? 'fma' : 'mul-add'}`, (memory) => buildFlashTileModule(memory, { D, Dv: D, fma }));
  const span = wasm.exported<FlashSpan>(kernel.instance, 'flashSpan');
  const regions = [4 * ROWS * D, 4 * KEYS * D, 4 * KEYS * D, 12 * ROWS, 4 * ROWS, 4 * ROWS, 4 * ROWS * D, 4 * ROWS * 64].map((bytes) => heap.alloc(bytes, 'tile.bench'));
  const [q, k, v, meta, m, l, acc, s] = regions as [wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion];
  try {
    const f32 = heap.f32;
    for (const r of [q, k, v]) for (let i = 0; i < r.byteLength / 4; i++) f32[r.index + i] = (Math.random() * 2 - 1) * 0.3;
    // every row sees every key: {sinkEnd 0, lo 0, hi 2^30}
    for (let r = 0; r < ROWS; r++) heap.i32.set([0, 0, 2 ** 30], meta.index + 3 * r);
    let best = Infinity;
    for (let run = 0; run < RUNS; run++) {
      f32.fill(-Infinity, m.index, m.index + ROWS);
      f32.fill(0, l.index, l.index + ROWS);
      f32.fill(0, acc.index, acc.index + ROWS * D);
      const t0 = performance.now();
      span(q.byteOffset, ROWS, D, k.byteOffset, 4 * D, v.byteOffset, 4 * D, D, 0, KEYS, meta.byteOffset, m.byteOffset, l.byteOffset, acc.byteOffset, s.byteOffset, edge);
      best = Math.min(best, performance.now() - t0);
    }
    return (2 * ROWS * KEYS * 2 * D) / best / 1e6;
  } finally {
    for (const r of regions) r.release();
  }
}

console.log(`flash tile, one thread, ${ROWS} rows × ${KEYS} keys, best of ${RUNS}; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (const fma of wasm.relaxedSimdSupported() ? [true, false] : [false]) {
  const heap = new wasm.WasmHeap({ relaxedSimd: fma });
  for (const D of [64, 128]) {
    const interior = await tileThroughput(heap, D, fma, 0);
    const edge = await tileThroughput(heap, D, fma, 1);
    console.log(`d=${String(D).padEnd(4)} ${(fma ? 'FMA' : 'mul+add').padEnd(8)} interior ${interior.toFixed(1).padStart(5)} GFLOP/s   edge ${edge.toFixed(1).padStart(5)} GFLOP/s`);
  }
}
