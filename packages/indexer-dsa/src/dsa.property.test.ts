// Property: on every backend, the DSA layer (MLA plus the lightning indexer's top-k) in both
// evaluation orders agrees with the plain float64 DSA (spec §2 naive form + §3) on random
// configs, within the f32 bound of the case (testkit's layerTolerance over the summed reduction
// lengths), on every query whose top-k boundary is clear of near-ties (on the others f32 may
// rightly select another token; their selections are compared only where settled). Every case
// releases what it made. A failure prints the seed and path that replay it.
import { type Backend, tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { assertProperty, describeEachBackend, firstOutside, layerTolerance, SeededRandom } from '@attnkit/testkit';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import type { DSAConfigInput, ResolvedDSAConfig } from './config.js';
import { randomLayer } from './testing/fixtures/layers.js';
import { clearBoundaries, referenceDSA } from './testing/fixtures/reference-dsa.js';

const { available } = await availableBackends();

/** Rounding stages whose errors add along MLA's chain (projections, norms, RoPE, scores, softmax, P·V, output). */
const STAGES = 8;

const problem = fc.record({
  config: fc.record({
    dim: fc.integer({ min: 4, max: 20 }),
    nHeads: fc.integer({ min: 1, max: 3 }),
    qLoraRank: fc.integer({ min: 2, max: 10 }),
    kvLoraRank: fc.integer({ min: 2, max: 12 }),
    qkNopeHeadDim: fc.integer({ min: 1, max: 6 }),
    qkRopeHeadDim: fc.integer({ min: 1, max: 3 }).map((n) => 2 * n),
    vHeadDim: fc.integer({ min: 1, max: 6 }),
    indexNHeads: fc.integer({ min: 1, max: 4 }),
    indexHeadDim: fc.constantFrom(8, 16),
    indexTopk: fc.integer({ min: 1, max: 12 }),
  }),
  B: fc.integer({ min: 1, max: 2 }),
  T: fc.integer({ min: 1, max: 16 }),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
});

type Problem = typeof problem extends fc.Arbitrary<infer P> ? P : never;

function configOf(p: Problem): DSAConfigInput {
  return { ...p.config, maxSeqLen: 32, yarn: { originalSeqLen: 32 } };
}

function reductionLength(c: ResolvedDSAConfig, T: number): number {
  return 2 * c.dim + 2 * c.qLoraRank + 3 * c.kvLoraRank + c.qkHeadDim + c.qkRopeHeadDim + 2 * T + c.nHeads * c.vHeadDim;
}

async function agrees(backend: Backend, p: Problem): Promise<void> {
  const before = backend.memory();
  const { layer, config, host } = await randomLayer(backend, configOf(p), p.seed);
  try {
    const { B, T } = p;
    const xs = new SeededRandom(p.seed + 1).normalArray(B * T * config.dim);
    using x = tensor(backend, xs, [B, T, config.dim]);
    const ref = referenceDSA(config, host, xs, B, T);
    const clear = clearBoundaries(ref.scores, B, T, config.indexTopk);
    const tolerance = layerTolerance(ref.y, reductionLength(config, T), STAGES);
    const D = config.dim;
    for (const order of ['naive', 'absorbed'] as const) {
      using y = await layer.forward(x, { order });
      const values = await y.data();
      for (const [row, ok] of clear.entries()) {
        if (!ok) continue;
        const at = row * D;
        expect(firstOutside(values.subarray(at, at + D), ref.y.subarray(at, at + D), tolerance.subarray(at, at + D)), `${order} on ${backend.info.name}: query ${row}`).toBeNull();
      }
    }
  } finally {
    layer.dispose();
  }
  const after = backend.memory();
  expect({ tensors: after.liveTensors, buffers: after.liveBuffers }, 'every tensor released').toEqual({ tensors: before.liveTensors, buffers: before.liveBuffers });
}

describeEachBackend(available, (name) => `DSA property on ${name}`, (getBackend, backendName) => {
  it('naive and absorbed agree with the float64 DSA within the f32 bound of each case', async () => {
    await assertProperty(`DSA on ${backendName}`, fc.asyncProperty(problem, (p) => agrees(getBackend(), p)), backendName === 'gpujs-webgpu' ? 8 : 15);
  });
});
