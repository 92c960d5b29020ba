// Every golden case on every backend available here (CI requires cpu, gpujs-cpu, gpujs-webasm
// and gpujs-webgpu). A case of a variant whose package has not landed is skipped with its
// reason, never counted as passed.
import { availableBackends } from '@attnkit/tensor-core/testing';
import { loadGoldenCases } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import { isPending } from './adapter.js';
import { formatResult, runGolden } from './runner.js';
import { VARIANTS } from './variants/index.js';

const cases = loadGoldenCases();
const { available } = await availableBackends();

describe('golden vectors', () => {
  it('lists every case of the shared folder with a known variant', () => {
    expect(cases.length).toBeGreaterThan(0);
    for (const c of cases) expect(Object.keys(VARIANTS)).toContain(c.variant);
  });

  for (const backend of available) {
    describe(backend.name, () => {
      for (const c of cases) {
        const entry = VARIANTS[c.variant];
        const pending = entry && isPending(entry) ? entry.pending : null;
        it.skipIf(pending !== null)(`${c.name}${pending ? ` (${pending})` : ''}`, async () => {
          const [result] = await runGolden({ cases: [c], backends: [backend] });
          expect(result?.status, result ? formatResult(result) : 'no result').toBe('pass');
        });
      }
    });
  }
});
