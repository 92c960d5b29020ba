// Property: on every backend, native sparse attention agrees with the plain float64 NSA of spec
// §4 on random configs (GQA groups, compression and selection blocks, top-n with forced initial
// and local blocks, windows, ragged lengths, key/value position encodings), within the f32 bound
// of the case (testkit's layerTolerance over the summed reduction lengths). Draws whose top-n
// choice is within 1e-4 of a tie are discarded: f32 and f64 may then pick different blocks.
// Every case releases what it made. A failure prints the seed and path that replay it.
import { type Backend, type Tensor, tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { assertProperty, describeEachBackend, firstOutside, layerTolerance, SeededRandom } from '@attnkit/testkit';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { type NSAConfig, type ResolvedNSAConfig, resolveNSAConfig } from './config.js';
import { nativeSparseAttention } from './nsa.js';
import { type ReferenceInputs, nsaReference } from './testing/fixtures/nsa-reference.js';
import type { NSAWeights } from './weights.js';

const { available } = await availableBackends();

/** Rounding stages whose errors add: compression, scores, the three softmaxes, P·V, gates, the gated sum. */
const STAGES = 8;

const problem = fc
  .record({
    Hkv: fc.integer({ min: 1, max: 2 }),
    G: fc.integer({ min: 1, max: 3 }),
    headDim: fc.integer({ min: 2, max: 8 }),
    vHeadDim: fc.integer({ min: 1, max: 8 }),
    gateDim: fc.integer({ min: 1, max: 8 }),
    cmpStride: fc.constantFrom(1, 2, 4),
    cmpBlocks: fc.integer({ min: 1, max: 3 }),
    slcBlocks: fc.integer({ min: 1, max: 3 }),
    nSelected: fc.integer({ min: 1, max: 4 }),
    nInit: fc.integer({ min: 0, max: 1 }),
    nLocal: fc.integer({ min: 0, max: 2 }),
    window: fc.integer({ min: 1, max: 16 }),
    pe: fc.boolean(),
    B: fc.integer({ min: 1, max: 2 }),
    T: fc.integer({ min: 1, max: 40 }),
    sPart: fc.double({ min: 0, max: 1, noNaN: true }),
    ragged: fc.boolean(),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  })
  .map((p) => {
    const config: NSAConfig = {
      nHeads: p.Hkv * p.G,
      nKvHeads: p.Hkv,
      headDim: p.headDim,
      vHeadDim: p.vHeadDim,
      gateDim: p.gateDim,
      cmpStride: p.cmpStride,
      cmpBlock: p.cmpStride * p.cmpBlocks,
      slcBlock: p.cmpStride * p.slcBlocks,
      nSelected: p.nSelected,
      nInit: Math.min(p.nInit, p.nSelected),
      nLocal: Math.min(p.nLocal, p.nSelected - Math.min(p.nInit, p.nSelected)),
      window: p.window,
    };
    return { ...p, config, S: Math.max(1, Math.round(p.sPart * p.T)) };
  });

type Problem = typeof problem extends fc.Arbitrary<infer P> ? P : never;

function reductionLength(c: ResolvedNSAConfig, T: number): number {
  return c.cmpBlock + c.headDim + 3 * T + c.gateDim + 3;
}

async function agrees(backend: Backend, p: Problem): Promise<void> {
  const config = resolveNSAConfig(p.config);
  const { nHeads: Hq, nKvHeads: Hkv, headDim: D, vHeadDim: Dv, gateDim: X, cmpBlock: l } = config;
  const { B, S, T } = p;
  const rng = new SeededRandom(p.seed);
  const lengths = Array.from({ length: B }, () => (p.ragged ? rng.int(S, T) : T));
  const inputs: ReferenceInputs = {
    B,
    S,
    T,
    lengths,
    q: rng.normalArray(B * S * Hq * D),
    k: rng.normalArray(B * T * Hkv * D),
    v: rng.normalArray(B * T * Hkv * Dv),
    x: rng.normalArray(B * S * X),
    gateWeight: rng.normalArray(3 * Hq * X, 0.5),
    gateBias: rng.normalArray(3 * Hq, 0.5),
    keyPE: p.pe ? rng.normalArray(Hkv * l * D, 0.3) : null,
    valuePE: p.pe ? rng.normalArray(Hkv * l * Dv, 0.3) : null,
    keyMLP: null,
    valueMLP: null,
  };
  const ref = nsaReference(config, inputs);
  fc.pre(ref.margin >= 1e-4); // a near-tie in the top-n: f32 may rightly pick another block

  const before = backend.memory();
  const owned: Tensor[] = [];
  const up = (data: Float32Array, shape: readonly number[]): Tensor => {
    const t = tensor(backend, data, shape);
    owned.push(t);
    return t;
  };
  try {
    const weights: NSAWeights = {
      gateWeight: up(inputs.gateWeight, [3 * Hq, X]),
      gateBias: inputs.gateBias && up(inputs.gateBias, [3 * Hq]),
      keyPE: inputs.keyPE && up(inputs.keyPE, [Hkv, l, D]),
      valuePE: inputs.valuePE && up(inputs.valuePE, [Hkv, l, Dv]),
    };
    const { out } = await nativeSparseAttention(up(inputs.q, [B, S, Hq, D]), up(inputs.k, [B, T, Hkv, D]), up(inputs.v, [B, T, Hkv, Dv]), up(inputs.x, [B, S, X]), config, weights, {
      kvLengths: lengths,
    });
    owned.push(out);
    const tolerance = layerTolerance(ref.out, reductionLength(config, T), STAGES);
    expect(firstOutside(await out.data(), ref.out, tolerance), `NSA on ${backend.info.name}`).toBeNull();
  } finally {
    for (const t of owned) t.dispose();
  }
  const after = backend.memory();
  expect({ tensors: after.liveTensors, buffers: after.liveBuffers }, 'every tensor released').toEqual({ tensors: before.liveTensors, buffers: before.liveBuffers });
}

describeEachBackend(available, (name) => `NSA property on ${name}`, (getBackend, backendName) => {
  it('agrees with the float64 NSA within the f32 bound of each case', async () => {
    await assertProperty(`NSA on ${backendName}`, fc.asyncProperty(problem, (p) => agrees(getBackend(), p)), backendName === 'gpujs-webgpu' ? 8 : 15);
  });
});
