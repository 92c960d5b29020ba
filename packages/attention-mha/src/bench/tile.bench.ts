// The flash tile alone, one thread: `flashSpan` over 32 query rows × 2048 keys (packed K/V rows,
// every key visible), as an interior span and as a span a mask edge crosses (TILE_EDGE, the
// masked P·V where needed), for d = 64 and 128, FMA and mul + add builds; K as rows (what decode
// and the sparse forms read) and in transposed tiles (TILE_K_TRANSPOSED: prefill's packing). The best of many
// short runs, so other processes on the machine disturb it less than the end-to-end benchmark:
// the figure to compare with the wasm ceiling (tensor-core's ceiling.bench.ts, 50.7 GFLOP/s per
// core with FMA on the Zen 3 of BENCHMARKS.md).
//
//   pnpm --filter @attnkit/attention-mha exec tsx --experimental-wasm-relaxed-simd --tsconfig tsconfig.json src/bench/tile.bench.ts

import { loadavg } from 'node:os';
import { wasm } from '@attnkit/tensor-core';
import { type FlashSpan, TILE_EDGE, TILE_KEYS, TILE_K_TRANSPOSED, buildFlashTileModule } from '../cpu/wasm-tile.js';

const ROWS = 32;
const KEYS = 2048;
const RUNS = 200;

async function tileThroughput(heap: wasm.WasmHeap, D: number, fma: boolean, flags: number): Promise<number> {
  const kernel = await heap.module(`bench/flash-tile/${D}/${fma ? 'fma' : 'mul-add'}`, (memory) => buildFlashTileModule(memory, { D, Dv: D, fma }));
  const span = wasm.exported<FlashSpan>(kernel.instance, 'flashSpan');
  const regions = [4 * ROWS * D, 4 * KEYS * D, 4 * KEYS * D, 12 * ROWS, 4 * ROWS, 4 * ROWS, 4 * ROWS * D, 4 * ROWS * 64].map((bytes) => heap.alloc(bytes, 'tile.bench'));
  const [q, k, v, meta, m, l, acc, s] = regions as [wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion];
  try {
    const f32 = heap.f32;
    for (const r of [q, k, v]) for (let i = 0; i < r.byteLength / 4; i++) f32[r.index + i] = (Math.random() * 2 - 1) * 0.3;
    // every row sees every key: {sinkEnd 0, lo 0, hi 2^30}
    for (let r = 0; r < ROWS; r++) heap.i32.set([0, 0, 2 ** 30], meta.index + 3 * r);
    if (flags & TILE_K_TRANSPOSED) {
      // the same keys in transposed tiles: key t's element d at tile ⌊t/64⌋, row d, lane t mod 64
      const rows = f32.slice(k.index, k.index + KEYS * D);
      for (let t = 0; t < KEYS; t++) for (let d = 0; d < D; d++) f32[k.index + (t - (t % TILE_KEYS)) * D + d * TILE_KEYS + (t % TILE_KEYS)] = rows[t * D + d] as number;
    }
    let best = Infinity;
    for (let run = 0; run < RUNS; run++) {
      f32.fill(-Infinity, m.index, m.index + ROWS);
      f32.fill(0, l.index, l.index + ROWS);
      f32.fill(0, acc.index, acc.index + ROWS * D);
      const t0 = performance.now();
      span(q.byteOffset, ROWS, D, k.byteOffset, 4 * D, v.byteOffset, 4 * D, D, 0, KEYS, meta.byteOffset, m.byteOffset, l.byteOffset, acc.byteOffset, s.byteOffset, flags);
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
    for (const kTiles of [0, TILE_K_TRANSPOSED]) {
      const interior = await tileThroughput(heap, D, fma, kTiles);
      const edge = await tileThroughput(heap, D, fma, kTiles | TILE_EDGE);
      console.log(
        `d=${String(D).padEnd(4)} ${(fma ? 'FMA' : 'mul+add').padEnd(8)} K ${kTiles ? 'tiles' : 'rows '}  interior ${interior.toFixed(1).padStart(5)} GFLOP/s   edge ${edge.toFixed(1).padStart(5)} GFLOP/s`,
      );
    }
  }
}
