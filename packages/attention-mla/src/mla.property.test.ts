// Property: on every backend, the MLA layer in both evaluation orders (naive and absorbed)
// agrees with the plain float64 MLA of spec §2 on random configs (with and without query LoRA,
// with and without YaRN), within the f32 bound of the case: γ(L) over the chain's summed
// reduction lengths L (testkit's layerTolerance). Every case releases what it made. A failure
// prints the seed and path that replay it (ATTNKIT_FC_SEED / ATTNKIT_FC_PATH).
import { type Backend, tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { assertProperty, describeEachBackend, firstOutside, layerTolerance, SeededRandom } from '@attnkit/testkit';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import type { MLAConfigInput, ResolvedMLAConfig } from './config.js';
import { randomLayer } from './testing/fixtures/layers.js';
import { referenceMLA } from './testing/fixtures/reference-mla.js';

const { available } = await availableBackends();

/** Rounding stages whose errors add along the chain (projections, norms, RoPE, scores, softmax, P·V, output). */
const STAGES = 8;

const problem = fc.record({
  config: fc.record({
    dim: fc.integer({ min: 4, max: 24 }),
    nHeads: fc.integer({ min: 1, max: 4 }),
    qLoraRank: fc.oneof(fc.constant(0), fc.integer({ min: 2, max: 12 })),
    kvLoraRank: fc.integer({ min: 2, max: 16 }),
    qkNopeHeadDim: fc.integer({ min: 1, max: 8 }),
    qkRopeHeadDim: fc.integer({ min: 1, max: 4 }).map((n) => 2 * n),
    vHeadDim: fc.integer({ min: 1, max: 8 }),
    yarn: fc.boolean(),
  }),
  B: fc.integer({ min: 1, max: 2 }),
  T: fc.integer({ min: 1, max: 12 }),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
});

type Problem = typeof problem extends fc.Arbitrary<infer P> ? P : never;

function configOf(p: Problem): MLAConfigInput {
  const { yarn, ...sizes } = p.config;
  // YaRN on: a short original context so that the positions run past it.
  return { ...sizes, maxSeqLen: 32, yarn: yarn ? { originalSeqLen: 4, factor: 4, mscale: 0.707 } : { originalSeqLen: 32 } };
}

/** Summed reduction lengths of both orders: projections, the two norms, scores, softmax, P·V and the output. */
function reductionLength(c: ResolvedMLAConfig, T: number): number {
  return 2 * c.dim + 2 * c.qLoraRank + 3 * c.kvLoraRank + c.qkHeadDim + c.qkRopeHeadDim + 2 * T + c.nHeads * c.vHeadDim;
}

async function agrees(backend: Backend, p: Problem): Promise<void> {
  const before = backend.memory();
  const { layer, config, host } = await randomLayer(backend, configOf(p), p.seed);
  try {
    const xs = new SeededRandom(p.seed + 1).normalArray(p.B * p.T * config.dim);
    using x = tensor(backend, xs, [p.B, p.T, config.dim]);
    const expected = referenceMLA(config, host, xs, p.B, p.T);
    const tolerance = layerTolerance(expected, reductionLength(config, p.T), STAGES);
    for (const order of ['naive', 'absorbed'] as const) {
      using y = await layer.forward(x, { order });
      expect(firstOutside(await y.data(), expected, tolerance), `${order} on ${backend.info.name}`).toBeNull();
    }
  } finally {
    layer.dispose();
  }
  const after = backend.memory();
  expect({ tensors: after.liveTensors, buffers: after.liveBuffers }, 'every tensor released').toEqual({ tensors: before.liveTensors, buffers: before.liveBuffers });
}

describeEachBackend(available, (name) => `MLA property on ${name}`, (getBackend, backendName) => {
  it('naive and absorbed agree with the float64 MLA within the f32 bound of each case', async () => {
    await assertProperty(`MLA on ${backendName}`, fc.asyncProperty(problem, (p) => agrees(getBackend(), p)), backendName === 'gpujs-webgpu' ? 8 : 15);
  });
});
