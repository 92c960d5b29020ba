// CPU decode (one query position) over K/V the backend keeps in its heap, in three head layouts:
// GQA 32/8 × 128 and MQA 8/1 × 128 at 64K, and an MLA-like 16 heads × 576 on one kv head at 16K
// (values the first 512 channels of the keys). The best of 6 calls each, in GB/s of K and V
// read — what decode is bound by — to compare trees back to back on a quiet machine
// (BENCHMARKS.md, issue 12, session 6: the token-order sweep against the tile path).
//
//   pnpm --filter @attnkit/attention-mha exec tsx --experimental-wasm-relaxed-simd --tsconfig tsconfig.json src/bench/decode-shapes.bench.ts

import { loadavg } from 'node:os';
import { CpuBackend, tensor } from '@attnkit/tensor-core';
import { SeededRandom } from '@attnkit/testkit';
import { attention } from '../attention.js';

const SHAPES = [
  { name: 'GQA 32/8 × 128, T = 64K', T: 65536, Hq: 32, Hkv: 8, D: 128, Dv: 128 },
  { name: 'MLA-like 16/1 × 576 (values 512), T = 16K', T: 16384, Hq: 16, Hkv: 1, D: 576, Dv: 512 },
  { name: 'MQA 8/1 × 128, T = 64K', T: 65536, Hq: 8, Hkv: 1, D: 128, Dv: 128 },
] as const;
const CALLS = 6;

const backend = new CpuBackend({});
const rng = new SeededRandom(6);
console.log(`CPU decode, K/V in the heap, best of ${CALLS} calls; load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
try {
  for (const s of SHAPES) {
    const ownValues = s.D === s.Dv;
    using q = tensor(backend, rng.normalArray(s.Hq * s.D), [1, 1, s.Hq, s.D]);
    using k = tensor(backend, rng.normalArray(s.T * s.Hkv * s.D), [1, s.T, s.Hkv, s.D]);
    using v = ownValues ? tensor(backend, rng.normalArray(s.T * s.Hkv * s.Dv), [1, s.T, s.Hkv, s.Dv]) : null;
    const options = ownValues ? { mask: 'causal' as const } : { mask: 'causal' as const, valueDim: s.Dv };
    let best = Infinity;
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      const { out } = await attention(q, k, v, options);
      await out.data();
      out.dispose();
      best = Math.min(best, performance.now() - t0);
    }
    const bytes = 4 * s.T * s.Hkv * (s.D + (ownValues ? s.Dv : 0));
    console.log(`${s.name.padEnd(44)} ${best.toFixed(2).padStart(7)} ms  ${(bytes / best / 1e6).toFixed(2).padStart(6)} GB/s`);
  }
} finally {
  await backend.dispose();
}
console.log(`load average at the end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
