// sparseAttention with `distinctIndices`: on gpujs-webgpu a decode step reads the key list on the
// device (the WGSL decode kernel in list mode); everywhere it must equal the reference
// implementation on the same backend. Lists hold −1 slots, keys past a sequence's length (DSA's
// top-k picks hidden positions when fewer keys are visible than k) and are shared by the kv heads
// or given per kv head; MLA's shape (values read from the keys, 32 heads on one kv head) included.
import { tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { SeededRandom, compareArrays, describeEachBackend } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import { attention, sparseAttention } from '../attention.js';

const { available } = await availableBackends();

interface Case {
  readonly name: string;
  readonly B: number;
  readonly T: number;
  readonly Hq: number;
  readonly Hkv: number;
  readonly D: number;
  readonly Dv: number;
  readonly K: number;
  readonly listHeads: number;
  readonly lengths: readonly number[];
  readonly valuesFromKeys?: boolean;
}

const CASES: readonly Case[] = [
  { name: 'shared list, ragged lengths', B: 2, T: 300, Hq: 4, Hkv: 2, D: 32, Dv: 32, K: 40, listHeads: 1, lengths: [300, 57] },
  { name: 'a list per kv head', B: 1, T: 200, Hq: 6, Hkv: 3, D: 16, Dv: 24, K: 17, listHeads: 3, lengths: [200] },
  { name: "MLA's absorbed shape: 32 heads, values from the keys", B: 1, T: 700, Hq: 32, Hkv: 1, D: 72, Dv: 64, K: 300, listHeads: 1, lengths: [650], valuesFromKeys: true },
  { name: "MLA's full width (DeepSeek-V3.2): 576-channel keys, 512-channel values", B: 2, T: 120, Hq: 4, Hkv: 1, D: 576, Dv: 512, K: 50, listHeads: 1, lengths: [120, 61], valuesFromKeys: true },
];

/** Distinct keys per list: a random subset of [0, T) (some past the length), with −1 holes. */
function keyLists(rng: SeededRandom, c: Case): Int32Array {
  const out = new Int32Array(c.B * c.listHeads * c.K);
  for (let row = 0; row < c.B * c.listHeads; row++) {
    const all = Array.from({ length: c.T }, (_, t) => t);
    for (let i = 0; i < c.K; i++) {
      const j = i + Math.floor(rng.next() * (c.T - i));
      [all[i], all[j]] = [all[j] as number, all[i] as number];
      out[row * c.K + i] = i % 7 === 3 ? -1 : (all[i] as number);
    }
  }
  return out;
}

describe('sparseAttention with distinctIndices (decode)', () => {
  describeEachBackend(
    available,
    (name) => name,
    (getBackend, name) => {
      for (const c of CASES) {
        it(c.name, async () => {
          const backend = getBackend();
          const rng = new SeededRandom(11);
          using q = tensor(backend, rng.normalArray(c.B * c.Hq * c.D), [c.B, 1, c.Hq, c.D]);
          using k = tensor(backend, rng.normalArray(c.B * c.T * c.Hkv * c.D), [c.B, c.T, c.Hkv, c.D]);
          using v = c.valuesFromKeys ? null : tensor(backend, rng.normalArray(c.B * c.T * c.Hkv * c.Dv), [c.B, c.T, c.Hkv, c.Dv]);
          using list = tensor(backend, keyLists(rng, c), [c.B, 1, c.listHeads, c.K], { dtype: 'i32' });
          const common = { kvLengths: c.lengths, ...(c.valuesFromKeys ? { valueDim: c.Dv } : {}) };
          const before = backend.memory().liveBuffers;
          const fast = await sparseAttention(q, k, v, list, { ...common, distinctIndices: true });
          const want = await sparseAttention(q, k, v, list, { ...common, implementation: 'reference' });
          if (name === 'gpujs-webgpu') expect(fast.dispatch.implementation).toBe('fused:webgpu-list-decode');
          else expect(fast.dispatch.declined).toMatch(/^webgpu-list-decode: /);
          // f32 sums in another order against the f64-accumulated reference
          const cmp = compareArrays(await fast.out.data(), await want.out.data(), { atol: 2e-5, rtol: 2e-5 });
          expect(cmp.pass, cmp.message).toBe(true);
          fast.out.dispose();
          want.out.dispose();
          expect(backend.memory().liveBuffers, 'nothing leaks').toBe(before);
        });
      }

      it("dense decode at MLA's full width (576-channel keys, values from them) runs the WGSL decode kernel", async () => {
        const backend = getBackend();
        const [B, T, Hq, D, Dv] = [2, 140, 4, 576, 512];
        const rng = new SeededRandom(12);
        using q = tensor(backend, rng.normalArray(B * Hq * D), [B, 1, Hq, D]);
        using k = tensor(backend, rng.normalArray(B * T * D), [B, T, 1, D]);
        const common = { kvLengths: [T, 77], valueDim: Dv };
        const fast = await attention(q, k, null, common);
        const want = await attention(q, k, null, { ...common, implementation: 'reference' });
        if (name === 'gpujs-webgpu') expect(fast.dispatch.implementation).toBe('fused:webgpu-flash');
        const cmp = compareArrays(await fast.out.data(), await want.out.data(), { atol: 2e-5, rtol: 2e-5 });
        expect(cmp.pass, cmp.message).toBe(true);
        fast.out.dispose();
        want.out.dispose();
      });
    },
    { checkLeaks: true },
  );
});
