// The shared golden mha_* / gqa_* / mqa_* cases through every implementation of the core (the
// fused kernel where the backend has one, the composed fallback, the float64 reference) on
// every backend, each held to the case's own tolerance. `pnpm golden` runs the default path;
// this makes sure the fallbacks pass the same vectors.
import { type Tensor, tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { compareArrays, describeEachBackend, type GoldenCase, loadGoldenCases } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { attention } from './attention.js';

const cases = loadGoldenCases().filter((c) => ['mha', 'gqa', 'mqa'].includes(c.variant));
const { available } = await availableBackends();

/** Keys or values of a case: the whole sequence, the cache and the new rows joined for decode/chunk cases. */
function keysOf(c: GoldenCase, name: 'k' | 'v'): { data: Float32Array; shape: number[] } {
  if (c.has(name)) {
    const t = c.tensor(name);
    return { data: t.data, shape: [...t.shape] };
  }
  const cache = c.tensor(`${name}_cache`);
  const fresh = c.tensor(`${name}_new`);
  const [B, Tc, H, W] = cache.shape as [number, number, number, number];
  const Sn = fresh.shape[1] as number;
  const data = new Float32Array(B * (Tc + Sn) * H * W);
  for (let b = 0; b < B; b++) {
    data.set(cache.data.subarray(b * Tc * H * W, (b + 1) * Tc * H * W), b * (Tc + Sn) * H * W);
    data.set(fresh.data.subarray(b * Sn * H * W, (b + 1) * Sn * H * W), (b * (Tc + Sn) + Tc) * H * W);
  }
  return { data, shape: [B, Tc + Sn, H, W] };
}

it('finds the attention golden cases', () => {
  expect(cases.map((c) => c.variant).sort()).toEqual(['gqa', 'gqa', 'gqa', 'gqa', 'mha', 'mha', 'mha', 'mha', 'mqa', 'mqa']);
});

describeEachBackend(available, (name) => `golden attention cases on ${name}`, (getBackend) => {
  for (const c of cases) {
    it(`${c.name}: auto, composed and reference all pass`, async () => {
      const backend = getBackend();
      const q = c.tensor('q');
      const k = keysOf(c, 'k');
      const v = keysOf(c, 'v');
      const made: Tensor[] = [tensor(backend, q.data, q.shape), tensor(backend, k.data, k.shape), tensor(backend, v.data, v.shape)];
      const [qt, kt, vt] = made as [Tensor, Tensor, Tensor];
      try {
        for (const implementation of ['auto', 'composed', 'reference'] as const) {
          const { out, lse, dispatch } = await attention(qt, kt, vt, {
            scale: c.number('scale'),
            mask: c.boolean('causal') ? 'causal' : 'none',
            returnLse: true,
            implementation,
          });
          for (const [key, t] of [['out', out], ['lse', lse]] as const) {
            const cmp = compareArrays(t ? await t.data() : new Float32Array(0), c.tensor(key).data, c.manifest.tolerance);
            expect(cmp.pass, `${key} via ${dispatch.implementation}: ${cmp.message}`).toBe(true);
          }
          out.dispose();
          lse?.dispose();
        }
      } finally {
        made.forEach((t) => t.dispose());
      }
    });
  }
});
