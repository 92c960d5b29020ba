// The fused decode steps — WebGPU's, and the CPU backend's (cpu/decode.ts) — against the
// composed path on the CPU backend (itself checked against the golden vectors): several
// sequences of different lengths, compressed blocks read in place from a cache with spare
// capacity rows, sequences shorter than one compressed block or with fewer candidate blocks than
// n, head dims that do not fill a subgroup, no gate bias. On every other backend the step
// declines and says why.
import { availableBackends } from '@attnkit/tensor-core/testing';
import { type Backend, type Tensor, concat, createBackend, fixedSubgroupSize, isCpuBackend, isWebGpuHost, tensor, zeros } from '@attnkit/tensor-core';
import { SeededRandom, compareArrays, describeEachBackend } from '@attnkit/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compressBlocks } from '../compress.js';
import { type NSAConfig, resolveNSAConfig } from '../config.js';
import { nativeSparseAttention } from '../nsa.js';

interface Case {
  readonly name: string;
  readonly config: NSAConfig;
  readonly lengths: readonly number[];
  readonly T: number;
  readonly bias: boolean;
  /** Spare compressed rows past the longest sequence's blocks (a cache's capacity). */
  readonly spareRows: number;
}

const CASES: readonly Case[] = [
  {
    name: 'two sequences, GQA 4, small blocks',
    config: { nHeads: 8, nKvHeads: 2, headDim: 64, vHeadDim: 32, gateDim: 24, nSelected: 4, window: 100 },
    lengths: [300, 1000],
    T: 1000,
    bias: true,
    spareRows: 7,
  },
  {
    name: 'shorter than one compressed block, fewer candidates than n',
    config: { nHeads: 6, nKvHeads: 1, headDim: 32, vHeadDim: 32, gateDim: 8, window: 8 },
    lengths: [20, 70],
    T: 80,
    bias: false,
    spareRows: 3,
  },
  {
    name: 'paper configuration, d 192/128, 16 heads per kv head',
    config: { nHeads: 16, nKvHeads: 1, headDim: 192, vHeadDim: 128, gateDim: 32 },
    lengths: [3000],
    T: 3000,
    bias: true,
    spareRows: 0,
  },
  {
    name: 'l = d = l′ (importance is p_cmp), window longer than the history',
    config: { nHeads: 6, nKvHeads: 3, headDim: 36, vHeadDim: 20, gateDim: 16, cmpBlock: 32, cmpStride: 32, slcBlock: 32, nSelected: 3, nInit: 0, nLocal: 1, window: 4096 },
    lengths: [400, 129, 1],
    T: 512,
    bias: true,
    spareRows: 1,
  },
];

const { available } = await availableBackends();
let cpu: Backend;
beforeAll(async () => {
  cpu = (await createBackend({ prefer: 'cpu' })).backend;
});
afterAll(async () => {
  await cpu.dispose();
});

/** The case's operands on `backend` (same seed, so the same numbers everywhere). */
/** Writes NaN into host rows before upload: [token, kv head] of k or v. */
interface Poison {
  readonly tensor: 'k' | 'v';
  readonly token: number;
  readonly kvHead: number;
}

async function operands(c: Case, backend: Backend, poison: readonly Poison[] = []): Promise<{ q: Tensor; k: Tensor; v: Tensor; x: Tensor; cKeys: Tensor; cValues: Tensor; gateWeight: Tensor; gateBias: Tensor | null } & Disposable> {
  const config = resolveNSAConfig(c.config);
  const { nHeads: Hq, nKvHeads: Hkv, headDim: D, vHeadDim: Dv, gateDim: X } = config;
  const B = c.lengths.length;
  const rng = new SeededRandom(7);
  const host = (shape: readonly number[], scale = 1): Float32Array => rng.normalArray(shape.reduce((a, b) => a * b, 1), scale);
  const up = (shape: readonly number[], scale = 1): Tensor => tensor(backend, host(shape, scale), shape);
  const q = up([B, 1, Hq, D]);
  const kHost = host([B, c.T, Hkv, D]);
  const vHost = host([B, c.T, Hkv, Dv]);
  for (const p of poison) {
    const [data, width] = p.tensor === 'k' ? [kHost, D] : [vHost, Dv];
    data.fill(Number.NaN, (p.token * Hkv + p.kvHead) * width, (p.token * Hkv + p.kvHead + 1) * width);
  }
  const k = tensor(backend, kHost, [B, c.T, Hkv, D]);
  const v = tensor(backend, vHost, [B, c.T, Hkv, Dv]);
  const x = up([B, 1, X]);
  const gateWeight = up([3 * Hq, X], 0.3);
  const gateBias = c.bias ? up([3 * Hq], 0.5) : null;
  // what a cache holds: every complete block of the buffer, then spare (never visible) rows
  const spare = async (t: Tensor): Promise<Tensor> => {
    if (c.spareRows === 0) return t;
    using pad = zeros(backend, [B, c.spareRows, Hkv, t.shape[3] as number]);
    using own = t;
    return await concat([own, pad], 1);
  };
  const cKeys = await spare(await compressBlocks(k, { kind: 'mean', pe: null, mlp: null }, config));
  const cValues = await spare(await compressBlocks(v, { kind: 'mean', pe: null, mlp: null }, config));
  return {
    q, k, v, x, cKeys, cValues, gateWeight, gateBias,
    [Symbol.dispose]() {
      for (const t of [q, k, v, x, cKeys, cValues, gateWeight, gateBias]) t?.dispose();
    },
  };
}

async function decodeStep(
  c: Case,
  backend: Backend,
  poison: readonly Poison[] = [],
  implementation: 'auto' | 'composed' = 'auto',
): Promise<{ out: Float32Array; implementation: string; declined: string | undefined }> {
  const config = resolveNSAConfig(c.config);
  using o = await operands(c, backend, poison);
  const { out, dispatch } = await nativeSparseAttention(o.q, o.k, o.v, o.x, config, { gateWeight: o.gateWeight, gateBias: o.gateBias }, {
    kvLengths: c.lengths,
    compressed: { keys: o.cKeys, values: o.cValues },
    implementation,
  });
  using result = out;
  return { out: await result.data(), implementation: dispatch.selected.implementation, declined: dispatch.selected.declined };
}

describe('fused NSA decode step', () => {
  describeEachBackend(
    available,
    (name) => name,
    (getBackend) => {
      it('steps with new queries on one history (bind groups reused, operands staged)', async () => {
        const backend = getBackend();
        const c = CASES[0] as Case;
        const config = resolveNSAConfig(c.config);
        using mine = await operands(c, backend);
        using theirs = await operands(c, cpu);
        const rng = new SeededRandom(11);
        for (let step = 0; step < 3; step++) {
          const qHost = rng.normalArray(mine.q.size);
          const xHost = rng.normalArray(mine.x.size);
          const run = async (b: Backend, o: typeof mine): Promise<Float32Array> => {
            using q = tensor(b, qHost, o.q.shape);
            using x = tensor(b, xHost, o.x.shape);
            const { out } = await nativeSparseAttention(q, o.k, o.v, x, config, { gateWeight: o.gateWeight, gateBias: o.gateBias }, {
              kvLengths: c.lengths,
              compressed: { keys: o.cKeys, values: o.cValues },
              implementation: b === cpu ? 'composed' : 'auto',
            });
            using result = out;
            return await result.data();
          };
          const cmp = compareArrays(await run(backend, mine), await run(cpu, theirs), { atol: 2e-5, rtol: 2e-5 });
          expect(cmp.pass, `step ${step}: ${cmp.message}`).toBe(true);
        }
      });

      for (const c of CASES) {
        it(`${c.name}: equals the composed step on the CPU`, async () => {
          const backend = getBackend();
          const want = await decodeStep(c, cpu, [], 'composed');
          const got = await decodeStep(c, backend);
          if (isWebGpuHost(backend) && fixedSubgroupSize(backend.webgpu.device) > 0) {
            expect(got.implementation).toBe('fused:webgpu-nsa-decode'); // lavapipe in CI, real GPUs
          } else if (isCpuBackend(backend)) {
            if (backend.wasm) expect(got.implementation).toBe('fused:cpu-nsa-decode');
            else expect(got.declined).toMatch(/^cpu-nsa-decode: no WebAssembly SIMD/);
          } else if (isWebGpuHost(backend)) {
            expect(got.declined).toMatch(/^webgpu-nsa-decode: the device has no subgroups/);
          } else {
            expect(got.declined).toMatch(/^webgpu-nsa-decode: needs the gpujs-webgpu backend/);
          }
          // f32 sums in a different order: the composed path itself is checked against the
          // golden vectors at 1e-4; a different block pick would differ by ~1e-1.
          const cmp = compareArrays(got.out, want.out, { atol: 2e-5, rtol: 2e-5 });
          expect(cmp.pass, cmp.message).toBe(true);
        });
      }
    },
    { checkLeaks: true },
  );
});

// NaN (the errors guide's rule): a hidden token's NaN never reaches the output; a visible key's
// NaN reaches every query head of its kv head and no other. Same NaN pattern as the composed
// step on the CPU, the finite outputs equal.
describe('fused NSA decode step with NaN inputs', () => {
  const c: Case = {
    name: 'NaN',
    config: { nHeads: 4, nKvHeads: 2, headDim: 32, vHeadDim: 16, gateDim: 8, nSelected: 4, window: 64 },
    lengths: [500],
    T: 600,
    bias: true,
    spareRows: 0,
  };
  const cases: readonly { readonly name: string; readonly poison: readonly Poison[]; readonly nanHeads: readonly number[] }[] = [
    { name: 'a hidden token (past the length) holds NaN values and keys', poison: [{ tensor: 'v', token: 550, kvHead: 0 }, { tensor: 'k', token: 560, kvHead: 1 }], nanHeads: [] },
    { name: "a window token's value is NaN on kv head 1", poison: [{ tensor: 'v', token: 480, kvHead: 1 }], nanHeads: [2, 3] },
    // token 5 is in compressed block 0 and the forced initial block: both branches see it
    { name: "an early token's value is NaN on kv head 0 (compressed and selected branches)", poison: [{ tensor: 'v', token: 5, kvHead: 0 }], nanHeads: [0, 1] },
    // a NaN key makes its compressed blocks' scores NaN: p_cmp, and so every block's importance
    { name: "a middle token's key is NaN on kv head 1 (compressed scores)", poison: [{ tensor: 'k', token: 200, kvHead: 1 }], nanHeads: [2, 3] },
  ];
  describeEachBackend(
    available,
    (name) => name,
    (getBackend) => {
      for (const n of cases) {
        it(n.name, async () => {
          const backend = getBackend();
          const want = await decodeStep({ ...c, name: n.name }, cpu, n.poison, 'composed');
          const got = await decodeStep({ ...c, name: n.name }, backend, n.poison);
          const Dv = 16;
          for (let h = 0; h < 4; h++) {
            const row = got.out.subarray(h * Dv, (h + 1) * Dv);
            const ref = want.out.subarray(h * Dv, (h + 1) * Dv);
            expect(Array.from(row, Number.isNaN), `head ${h}`).toEqual(Array.from(ref, Number.isNaN));
            expect(row.some(Number.isNaN), `head ${h} NaN`).toBe(n.nanHeads.includes(h));
            if (!n.nanHeads.includes(h)) expect(compareArrays(row, ref, { atol: 2e-5, rtol: 2e-5 }).pass, `head ${h}`).toBe(true);
          }
        });
      }
    },
    { checkLeaks: true },
  );
});
