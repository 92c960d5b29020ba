// Conformance of the attention core on every backend available: seeded random problems over
// every option (shapes from 1 up across tile boundaries, D ≠ Dv, masks, windows with sinks,
// key lengths, biases, paged pools, quantised K/V, values read from the keys, sparse and
// block-sparse selections) against the float64 reference, through each implementation.
import { availableBackends } from '@attnkit/tensor-core/testing';
import { compareArrays, describeEachBackend, SeededRandom } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { attention, blockSparseAttention, sparseAttention } from './attention.js';
import { type RandomProblem, type SelectionKind, randomProblem } from './testing/random-problem.js';
import type { AttentionImplementation, AttentionResult } from './types.js';

// f32 inputs, f32 (composed) or f64 (fused) arithmetic, outputs of magnitude ~1: a correct
// kernel lands near 1e-6; an off-by-one in a mask or an index is off by O(0.1).
const TOLERANCE = { atol: 2e-5, rtol: 2e-4 };
// The CPU runs every case in a second; gpu.js modes compile and launch kernels per call (slow on
// software WebGPU), so they run a prefix of the same seeded sequence.
const CASES: Record<'cpu' | 'gpujs', Record<SelectionKind, number>> = {
  cpu: { dense: 60, indices: 25, blocks: 25 },
  gpujs: { dense: 16, indices: 8, blocks: 8 },
};
const SEEDS: Record<SelectionKind, number> = { dense: 5001, indices: 5002, blocks: 5003 };

const { available } = await availableBackends();

async function runProblem(p: RandomProblem, implementation: AttentionImplementation): Promise<AttentionResult> {
  const options = { ...p.options, implementation };
  if (p.kind === 'dense' || !p.selection) return attention(p.q, p.k, p.v, options);
  if (p.kind === 'indices') return sparseAttention(p.q, p.k, p.v, p.selection, options);
  return blockSparseAttention(p.q, p.k, p.v, p.selection, { ...options, blockSize: p.blockSize });
}

describeEachBackend(available, (name) => `attention core on ${name}`, (getBackend) => {
  for (const kind of ['dense', 'indices', 'blocks'] as const) {
    for (const implementation of ['auto', 'composed'] as const) {
      const seed = SEEDS[kind];
      it(`${kind} problems, implementation ${implementation}, match the float64 reference (seed ${seed})`, async () => {
        const backend = getBackend();
        const rng = new SeededRandom(seed);
        const before = backend.memory();
        for (let c = 0; c < CASES[backend.info.family][kind]; c++) {
          const p = await randomProblem(backend, rng, { selection: kind });
          try {
            const result = await runProblem(p, implementation);
            const out = await result.out.data();
            const lse = result.lse ? await result.lse.data() : null;
            result.out.dispose();
            result.lse?.dispose();
            const cmpOut = compareArrays(out, p.expected.out, TOLERANCE);
            expect(cmpOut.pass, `case ${c}: ${p.description} [${result.dispatch.implementation}] out: ${cmpOut.message}`).toBe(true);
            expect(lse, 'lse requested').not.toBeNull();
            const cmpLse = compareArrays(lse ?? new Float32Array(0), p.expected.lse, TOLERANCE);
            expect(cmpLse.pass, `case ${c}: ${p.description} lse: ${cmpLse.message}`).toBe(true);
          } finally {
            p.dispose();
          }
        }
        const after = backend.memory();
        expect({ buffers: after.liveBuffers, tensors: after.liveTensors }).toEqual({ buffers: before.liveBuffers, tensors: before.liveTensors });
      });
    }
  }

  it('reports what ran: the fused kernel where one accepts, the composed fallback with the reason otherwise', async () => {
    const backend = getBackend();
    const rng = new SeededRandom(77);
    const p = await randomProblem(backend, rng, { selection: 'dense', force: { B: 1, S: 2, T: 3, Hq: 2, Hkv: 1, D: 4, Dv: 4, kvDType: 'f32' } });
    try {
      const auto = await attention(p.q, p.k, p.v, p.options);
      const composed = await attention(p.q, p.k, p.v, { ...p.options, implementation: 'composed' });
      const reference = await attention(p.q, p.k, p.v, { ...p.options, implementation: 'reference' });
      if (backend.info.family === 'cpu') {
        // WebAssembly SIMD first; the TypeScript kernel when it declines (this problem's bias), with its reason
        expect(['fused:cpu-wasm-flash', 'fused:cpu-flash']).toContain(auto.dispatch.implementation);
        if (auto.dispatch.implementation === 'fused:cpu-flash') expect(auto.dispatch.declined).toMatch(/^cpu-wasm-flash: /);
      }
      if (backend.info.name === 'gpujs-webgpu') {
        // the hand-written WGSL kernel first; the gpu.js kernel when it declines (bias, row map, …), with its reason
        expect(['fused:webgpu-flash', 'fused:gpujs-flash']).toContain(auto.dispatch.implementation);
        if (auto.dispatch.implementation === 'fused:gpujs-flash') expect(auto.dispatch.declined).toMatch(/webgpu-flash: /);
      } else if (backend.info.family === 'gpujs') {
        expect(auto.dispatch.implementation).toBe('fused:gpujs-flash');
        expect(auto.dispatch.declined).toMatch(/webgpu-flash: needs the gpujs-webgpu backend/);
      }
      if (!auto.dispatch.implementation.startsWith('fused:')) expect(auto.dispatch.declined).toMatch(/:/);
      expect(composed.dispatch.implementation).toBe('composed');
      expect(reference.dispatch.implementation).toBe('reference');
      for (const r of [auto, composed, reference]) {
        r.out.dispose();
        r.lse?.dispose();
      }
    } finally {
      p.dispose();
    }
  });
});
