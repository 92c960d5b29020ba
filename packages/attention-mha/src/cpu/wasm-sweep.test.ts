// Decode over K/V read in place from the heap, where whole pieces of the key range run as
// decodeSweep (token order, every kv head per group of 4 keys) and pieces a mask edge crosses as
// tiles: seeded random decode problems (1–3 query positions; causal or not, windows with sinks,
// per-sequence lengths, values read from the keys, MHA and GQA) and plain causal ones that take
// the sweep for certain, against the float64 reference, with both tiles (FMA and mul + add); on
// one thread (no shared heap: K/V streamed, no sweep) the random problems only.
import { CpuBackend, tensor } from '@attnkit/tensor-core';
import { SeededRandom, compareArrays } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import { attention } from '../attention.js';
import { attentionReference } from '../reference.js';
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

  // one thread has no shared heap, so no resident K/V: its decode streams copies (no sweep)
  if (threads > 1) it('sweeps plain causal decode over every kv head: MHA, GQA 2 and 4, ragged lengths, a window', async () => {
    const backend = new CpuBackend({ fma, threads });
    const rng = new SeededRandom(4200 + (fma ? 1 : 0) + 2 * threads);
    try {
      for (const c of [
        { B: 1, T: 2100, Hq: 4, Hkv: 4, D: 64, Dv: 64, lengths: [2100], window: null },
        { B: 2, T: 1500, Hq: 8, Hkv: 4, D: 48, Dv: 32, lengths: [1500, 1203], window: null },
        { B: 1, T: 3000, Hq: 12, Hkv: 3, D: 32, Dv: 32, lengths: [3000], window: 1000 },
      ]) {
        const { B, T, Hq, Hkv, D, Dv, lengths, window } = c;
        const q = rng.normalArray(B * Hq * D);
        const k = rng.normalArray(B * T * Hkv * D);
        const v = rng.normalArray(B * T * Hkv * Dv);
        using tq = tensor(backend, q, [B, 1, Hq, D]);
        using tk = tensor(backend, k, [B, T, Hkv, D]);
        using tv = tensor(backend, v, [B, T, Hkv, Dv]);
        expect(backend.wasm?.byteOffsetOf(backend.view(tk)), 'K in the heap (read in place)').not.toBeNull();
        const result = await attention(tq, tk, tv, { mask: 'causal', kvLengths: lengths, ...(window ? { window } : {}) });
        using out = result.out;
        const want = attentionReference({ q, B, S: 1, Hq }, { k, v, Hkv, D, Dv, T, rowMap: null, lengths }, { scale: 1 / Math.sqrt(D), causal: true, window, bias: null });
        const cmp = compareArrays(await out.data(), want.out, TOLERANCE);
        expect(cmp.pass, `${JSON.stringify(c)}: ${cmp.message}`).toBe(true);
      }
      expect(backend.wasm?.liveBytes()).toBe(0);
    } finally {
      await backend.dispose();
    }
  });
});
