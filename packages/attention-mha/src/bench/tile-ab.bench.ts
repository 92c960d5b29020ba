// The flash tile of this tree against another commit's, one thread, in one process: `flashSpan`
// over 32 query rows × 2048 keys (every key visible, K packed as rows or in transposed tiles),
// the two builds alternating round by round, each round the best of a few spans, so a change in
// the machine's load hits both. Prints per build the median and best ms per span and the median
// of the per-round time ratios (base / this: > 1 means this tree's tile is faster).
//
//   git archive <commit> packages/attention-mha/src | tar -x -C /tmp/base
//   pnpm --filter @attnkit/attention-mha exec tsx --experimental-wasm-relaxed-simd --tsconfig tsconfig.json src/bench/tile-ab.bench.ts -- --base /tmp/base/packages/attention-mha/src [--rounds 30]

import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchArgs } from '@attnkit/bench/cli';
import { wasm } from '@attnkit/tensor-core';
import { type FlashSpan, TILE_KEYS, TILE_K_TRANSPOSED, buildFlashTileModule } from '../cpu/wasm-tile.js';

const args = benchArgs('src/bench/tile-ab.bench.ts', {
  base: { type: 'string', help: "the src/ directory of another commit's attention-mha" },
  rounds: { type: 'string', default: '30', help: 'alternating rounds' },
});
const ROUNDS = args.count('rounds') ?? 30;
const baseDir = args.string('base');
if (!baseDir) throw new Error('--base DIR is required');
const base = (await import(pathToFileURL(resolve(baseDir, 'cpu/wasm-tile.ts')).href)) as { buildFlashTileModule: typeof buildFlashTileModule };

const ROWS = 32;
const KEYS = 2048;
const SPANS = 10; // per round, the best of these
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

const heap = new wasm.WasmHeap({ relaxedSimd: wasm.relaxedSimdSupported() });
const fma = heap.relaxedSimd;
console.log(`flash tile, this tree against ${baseDir}, one thread, ${ROWS} rows × ${KEYS} keys, ${fma ? 'FMA' : 'mul + add'}, ${ROUNDS} rounds of the best of ${SPANS}; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (const D of [64, 128]) {
  for (const flags of [0, TILE_K_TRANSPOSED]) {
    const builds = { this: buildFlashTileModule, base: base.buildFlashTileModule };
    const spans = await Promise.all(
      Object.entries(builds).map(async ([name, build]) => wasm.exported<FlashSpan>((await heap.module(`bench/tile-ab/${name}/${D}`, (memory) => build(memory, { D, Dv: D, fma }))).instance, 'flashSpan')),
    );
    const regions = [4 * ROWS * D, 4 * KEYS * D, 4 * KEYS * D, 12 * ROWS, 4 * ROWS, 4 * ROWS, 4 * ROWS * D, 4 * ROWS * TILE_KEYS].map((bytes) => heap.alloc(bytes, 'tile-ab.bench'));
    const [q, k, v, meta, m, l, acc, s] = regions as [wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion, wasm.WasmRegion];
    try {
      const f32 = heap.f32;
      for (const r of [q, k, v]) for (let i = 0; i < r.byteLength / 4; i++) f32[r.index + i] = (Math.random() * 2 - 1) * 0.3;
      for (let r = 0; r < ROWS; r++) heap.i32.set([0, 0, 2 ** 30], meta.index + 3 * r);
      const times: number[][] = spans.map(() => []);
      for (let round = 0; round < ROUNDS; round++) {
        for (let j = 0; j < spans.length; j++) {
          const i = (j + round) % spans.length;
          const span = spans[i] as FlashSpan;
          let best = Infinity;
          for (let x = 0; x < SPANS; x++) {
            f32.fill(-Infinity, m.index, m.index + ROWS);
            f32.fill(0, l.index, l.index + ROWS);
            f32.fill(0, acc.index, acc.index + ROWS * D);
            const t0 = performance.now();
            span(q.byteOffset, ROWS, D, k.byteOffset, 4 * D, v.byteOffset, 4 * D, D, 0, KEYS, meta.byteOffset, m.byteOffset, l.byteOffset, acc.byteOffset, s.byteOffset, flags);
            best = Math.min(best, performance.now() - t0);
          }
          times[i]?.push(best);
        }
      }
      const [mine, theirs] = times as [number[], number[]];
      const ratio = median(theirs.map((x, r) => x / (mine[r] as number)));
      console.log(
        `d=${String(D).padEnd(4)} K ${flags ? 'tiles' : 'rows '}  this ${median(mine).toFixed(3)} ms (best ${Math.min(...mine).toFixed(3)})   base ${median(theirs).toFixed(3)} ms (best ${Math.min(...theirs).toFixed(3)})   base / this: median ${ratio.toFixed(3)}`,
      );
    } finally {
      for (const r of regions) r.release();
    }
  }
}
console.log(`load at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
