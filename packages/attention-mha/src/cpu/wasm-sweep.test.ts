// Decode over K/V read in place from the heap, where whole pieces of the key range run as
// decodeSweep (token order, every kv head per group of 4 keys) and pieces a mask edge crosses as
// tiles: seeded random decode problems (1–3 query positions; causal or not, windows with sinks,
// per-sequence lengths, values read from the keys, MHA and GQA) against the float64 reference,
// on 2 threads and on 1, with both tiles (FMA and mul + add).
import { CpuBackend } from '@attnkit/tensor-core';
import { SeededRandom, compareArrays } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import { attention } from '../attention.js';
import { randomProblem } from '../testing/random-problem.js';

const TOLERANCE = { atol: 2e-5, rtol: 2e-4 };

describe.each([
  { fma: true, threads: 2 },
  { fma: false, threads: 2 },
  { fma: true, threads: 1 },
])('decode sweep (fma $fma, $threads threads)', ({ fma, threads }) => {
  it('matches the float64 reference on decode problems with K/V in the heap', async () => {
    const backend = new CpuBackend({ fma, threads });
    const rng = new SeededRandom(4100 + (fma ? 1 : 0) + 2 * threads);
    try {
      for (let n = 0; n < 10; n++) {
        const Hkv = rng.pick([2, 3, 4]); // one kv head keeps the tile path
        const D = rng.pick([32, 64, 36]);
        // ≥ 1 MiB of keys: the backend keeps them in its heap, where decode reads them in place
        const T = Math.ceil(2 ** 20 / (4 * Hkv * D)) + rng.int(0, 300);
        const force = { B: rng.int(1, 2), S: rng.int(1, 3), T, Hkv, Hq: Hkv * rng.pick([1, 3, 8]), D, Dv: rng.pick([D, 16]), kvDType: 'f32' as const };
        const p = await randomProblem(backend, rng, { selection: 'dense', force });
        try {
          const result = await attention(p.q, p.k, p.v, p.options);
          const cmp = compareArrays(await result.out.data(), p.expected.out, TOLERANCE);
          expect(cmp.pass, `${p.description}: ${cmp.message}`).toBe(true);
          result.out.dispose();
          result.lse?.dispose();
        } finally {
          p.dispose();
        }
      }
      expect(backend.wasm?.liveBytes()).toBe(0);
    } finally {
      await backend.dispose();
    }
  });
});
