// The fused WebGPU indexer against the float64 reference on gpujs-webgpu (lavapipe here, an
// H100 in the benchmarks): exact picks where f32 arithmetic is exact (small integers: many
// ties), picks that are exactly the top-k of the kernel's own scores and scores within the
// float tolerance on real-valued data, NaN and ±∞ scores, short rows and padding, batches of
// different lengths, declines with their reasons, and no leaks.
import { type Backend, cast, reshape, tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { SeededRandom, compareArrays, describeOnBackend } from '@attnkit/testkit';
import { beforeAll, expect, it } from 'vitest';
import { dispatchIndexer } from '../dispatch.js';
import type { IndexerImplementation, IndexerScoreInputs, IndexerScoreProblem } from '../problem.js';
import { topKInto } from '../top-k.js';
import { MAX_QUERIES } from './indexer.js';

const { available } = await availableBackends();
const SAME = { atol: 2e-6, rtol: 2e-5 };

interface Case {
  readonly B: number;
  readonly S: number;
  readonly HI: number;
  readonly DI: number;
  /** Keys per sequence (each ≥ S); T is the longest. */
  readonly lengths: readonly number[];
  /** index_topk: the picks are min(topk, T) wide. */
  readonly topk: number;
  /** Rows of the key buffer (≥ T: a cache's capacity). */
  readonly capacity?: number;
}

interface Operands {
  readonly q: Float32Array;
  readonly weights: Float32Array;
  readonly keys: Float32Array;
}

/** Small integers and weights in eighths: every f32 sum is exact, so scores tie often and match the float64 reference bit for bit. */
function integerOperands(c: Case, seed: number): Operands {
  const rng = new SeededRandom(seed);
  const T = c.capacity ?? Math.max(...c.lengths);
  return {
    q: Float32Array.from({ length: c.B * c.S * c.HI * c.DI }, () => rng.int(-1, 2)),
    weights: Float32Array.from({ length: c.B * c.S * c.HI }, () => rng.int(-2, 6) / 8),
    keys: Float32Array.from({ length: c.B * T * c.DI }, () => rng.int(-1, 1)),
  };
}

function normalOperands(c: Case, seed: number): Operands {
  const rng = new SeededRandom(seed);
  const T = c.capacity ?? Math.max(...c.lengths);
  return { q: rng.normalArray(c.B * c.S * c.HI * c.DI), weights: rng.normalArray(c.B * c.S * c.HI, 0.3), keys: rng.normalArray(c.B * T * c.DI) };
}

/** Scores within the f32 tolerance, NaN exactly where the reference has NaN. */
function expectScoresClose(got: Float32Array | null, expected: Float32Array | null, what: string): void {
  const a = got ?? new Float32Array();
  const e = expected ?? new Float32Array();
  expect(a.length, what).toBe(e.length);
  const nan = (v: number, i: number): number => (Number.isNaN(v) ? i : -1);
  expect(Array.from(a, nan).filter((i) => i >= 0), `${what}: NaN positions`).toEqual(Array.from(e, nan).filter((i) => i >= 0));
  const cmp = compareArrays(a.map((v) => (Number.isNaN(v) ? 0 : v)), e.map((v) => (Number.isNaN(v) ? 0 : v)), SAME);
  expect(cmp.pass, `${what}: ${cmp.message}`).toBe(true);
}

describeOnBackend(available, 'gpujs-webgpu', 'webgpu-indexer on gpujs-webgpu', (getBackend) => {
  let backend: Backend;
  beforeAll(() => {
    backend = getBackend();
  });

  /** One call through `implementation`, its picks [B·S][K] and scores (keepScores). */
  async function select(c: Case, ops: Operands, implementation: IndexerImplementation, keepScores: boolean, keyDtype: 'f32' | 'fp8e4m3' = 'f32') {
    const T = Math.max(...c.lengths);
    const capacity = c.capacity ?? T;
    using q = tensor(backend, ops.q, [c.B, c.S, c.HI, c.DI]);
    using weights = tensor(backend, ops.weights, [c.B, c.S, c.HI]);
    using wide = tensor(backend, ops.keys, [c.B, capacity, 1, c.DI]);
    using keys = keyDtype === 'f32' ? reshape(wide, wide.shape) : await cast(wide, keyDtype, { blockSize: c.DI }); // as the fp8 key cache stores them
    const inputs: IndexerScoreInputs = { q, weights, keys };
    const problem: IndexerScoreProblem = { fn: 'test', B: c.B, S: c.S, heads: c.HI, headDim: c.DI, T, lengths: c.lengths, topk: Math.min(c.topk, T), keepScores, signal: undefined };
    const out = await dispatchIndexer(backend, inputs, problem, implementation);
    using indices = out.indices;
    using scores = out.scores;
    expect(indices.dtype).toBe('i32');
    expect(indices.shape).toEqual([c.B, c.S, 1, problem.topk]);
    return { picks: await indices.dataInt(), scores: scores ? await scores.data() : null, dispatch: out.dispatch, K: problem.topk, T };
  }

  async function expectLikeReference(c: Case, ops: Operands, what: string): Promise<void> {
    const ref = await select(c, ops, 'reference', true);
    const got = await select(c, ops, 'fused', true);
    expect(got.dispatch.implementation, what).toBe('fused:webgpu-indexer');
    expect(Array.from(got.picks), `${what}: picks`).toEqual(Array.from(ref.picks));
    expectScoresClose(got.scores, ref.scores, `${what}: scores`);
    const lean = await select(c, ops, 'fused', false);
    expect(lean.scores).toBeNull();
    expect(Array.from(lean.picks), `${what}: picks without scores`).toEqual(Array.from(ref.picks));
  }

  it('picks exactly as the float64 reference: ties toward the lower index, across chunks, T not a multiple of anything', async () => {
    const cases: readonly Case[] = [
      { B: 1, S: 1, HI: 4, DI: 16, lengths: [1], topk: 7 },
      { B: 1, S: 1, HI: 8, DI: 32, lengths: [3001], topk: 2048 },
      { B: 2, S: 1, HI: 6, DI: 20, lengths: [2500, 1337], topk: 300, capacity: 2600 },
      { B: 3, S: 4, HI: 5, DI: 12, lengths: [1030, 4, 777], topk: 64 },
      { B: 2, S: 2, HI: 17, DI: 8, lengths: [5000, 4999], topk: 1000 },
    ];
    for (const [n, c] of cases.entries()) await expectLikeReference(c, integerOperands(c, 100 + n), `case ${n} ${JSON.stringify(c)}`);
  });

  it('dequantises fp8 keys as the cast does (NaN codes included) and picks as the reference', async () => {
    const c: Case = { B: 2, S: 1, HI: 4, DI: 16, lengths: [700, 333], topk: 100 };
    const ops = integerOperands(c, 19);
    ops.keys.fill(Number.NaN, 5 * 16, 6 * 16); // key 5 of sequence 0: NaN codes
    ops.keys.fill(1e-5, 7 * 16, 7 * 16 + 3); // key 7: values 10⁵ below the block's ±1 (subnormal codes)
    const ref = await select(c, ops, 'reference', true, 'fp8e4m3');
    const got = await select(c, ops, 'fused', true, 'fp8e4m3');
    expect(got.dispatch.implementation).toBe('fused:webgpu-indexer');
    expectScoresClose(got.scores, ref.scores, 'fp8 scores');
    expect(Array.from(got.picks)).toEqual(Array.from(ref.picks));
  });

  it('leaves −1 after the picks of a query that sees fewer than K keys (T < k included)', async () => {
    const c: Case = { B: 2, S: 3, HI: 4, DI: 8, lengths: [100, 40], topk: 2048 };
    const ops = integerOperands(c, 7);
    await expectLikeReference(c, ops, 'T < k');
    const { picks, K } = await select(c, ops, 'fused', false);
    expect(K).toBe(100);
    for (let s = 0; s < 3; s++) {
      const row = Array.from(picks.subarray((3 + s) * K, (4 + s) * K)); // sequence 1, query s at position 37 + s
      const visible = 38 + s;
      expect([...row.slice(0, visible)].sort((a, b) => a - b), `query ${s}: every visible key once`).toEqual(Array.from({ length: visible }, (_, t) => t));
      expect(row.slice(visible).every((t) => t === -1), `query ${s}: padding`).toBe(true);
    }
  });

  it('takes every key in index order when all scores tie (zero weights)', async () => {
    const c: Case = { B: 1, S: 2, HI: 4, DI: 8, lengths: [3000], topk: 1500 };
    const ops = { ...integerOperands(c, 9), weights: new Float32Array(c.B * c.S * c.HI) };
    await expectLikeReference(c, ops, 'all zero');
    const { picks } = await select(c, ops, 'fused', false);
    expect(Array.from(picks.subarray(0, 1500))).toEqual(Array.from({ length: 1500 }, (_, t) => t));
  });

  it('ranks NaN as −∞ (ties by index with −∞ scores), +∞ first, ReLU(NaN) = 0', async () => {
    const c: Case = { B: 1, S: 4, HI: 2, DI: 4, lengths: [40], topk: 30 };
    const ops = integerOperands(c, 11);
    const { q, weights, keys } = ops;
    keys.fill(Number.NaN, 3 * 4, 4 * 4); // key 3: every dot NaN, ReLU(NaN) = 0
    keys.fill(Number.POSITIVE_INFINITY, 10 * 4, 11 * 4); // key 10: dots of ±∞ (or NaN)
    keys.fill(Number.NEGATIVE_INFINITY, 20 * 4, 21 * 4); // key 20: the opposite signs
    q.fill(1, 0, 2 * 4); // query 0: both heads all ones
    weights.set([0.5, -0.25], 0); // query 0: key 10 scores ∞·0.5 − ∞·0.25 = NaN, key 20 ReLU(−∞) = 0
    weights.set([Number.NaN, 0.5], 2); // query 1: every score NaN
    q.fill(1, 2 * 2 * 4, 3 * 2 * 4); // query 2: all ones
    weights.set([-0.5, -0.25], 4); // query 2: key 10 scores −∞ (after every number)
    q.fill(1, 3 * 2 * 4, 4 * 2 * 4); // query 3: all ones
    weights.set([0.5, 0.25], 6); // query 3: key 10 scores +∞ (first)
    await expectLikeReference(c, ops, 'NaN and infinities');
    const { picks } = await select(c, ops, 'fused', false);
    expect(Array.from(picks.subarray(30, 60)), 'query 1: the first K visible keys, by index').toEqual(Array.from({ length: 30 }, (_, t) => t));
    expect(Array.from(picks.subarray(60, 90)), 'query 2: −∞ is not among the best 30 of 39').not.toContain(10);
    expect(picks[90], 'query 3: +∞ first').toBe(10);
  });

  it.each(['f32', 'fp8e4m3'] as const)('picks the top-k of its own scores on real-valued data, scores as the reference (%s keys)', async (keyDtype) => {
    const c: Case = { B: 2, S: 2, HI: 8, DI: 32, lengths: [4099, 2222], topk: 2048, capacity: 4200 };
    const ops = normalOperands(c, 13);
    const ref = await select(c, ops, 'reference', true, keyDtype);
    const got = await select(c, ops, 'fused', true, keyDtype);
    expect(got.dispatch.implementation).toBe('fused:webgpu-indexer');
    const scores = got.scores ?? new Float32Array();
    expectScoresClose(scores, ref.scores, 'scores');
    const { K, T } = got;
    const expected = new Int32Array(K);
    for (let r = 0; r < c.B * c.S; r++) {
      const visible = (c.lengths[Math.floor(r / c.S)] ?? 0) - c.S + (r % c.S) + 1;
      expected.fill(-1);
      topKInto(scores.subarray(r * T, r * T + visible), visible, K, expected, 0, new Float32Array(visible));
      expect(Array.from(got.picks.subarray(r * K, (r + 1) * K)), `row ${r}`).toEqual(Array.from(expected));
    }
  });

  it('declines what it does not take, with the reason, and the next kernel runs', async () => {
    const base: Case = { B: 1, S: MAX_QUERIES + 1, HI: 2, DI: 8, lengths: [20], topk: 5 };
    const prefill = await select(base, integerOperands(base, 15), 'auto', false);
    expect(prefill.dispatch.implementation).toBe('fused:gpujs-indexer');
    expect(prefill.dispatch.declined).toMatch(/webgpu-indexer: 9 queries per sequence/);
    const odd: Case = { ...base, S: 1, DI: 6 };
    const narrow = await select(odd, integerOperands(odd, 16), 'auto', false);
    expect(narrow.dispatch.declined).toMatch(/webgpu-indexer: index head dim 6/);
    using q = tensor(backend, new Float32Array(8), [1, 1, 1, 8]);
    using weights = tensor(backend, new Float32Array(1), [1, 1, 1]);
    using keys = tensor(backend, new Float32Array(16), [1, 2, 1, 8], { dtype: 'bf16' });
    const problem: IndexerScoreProblem = { fn: 'test', B: 1, S: 1, heads: 1, headDim: 8, T: 2, lengths: [2], topk: 2, keepScores: false, signal: undefined };
    const out = await dispatchIndexer(backend, { q, weights, keys }, problem, 'auto');
    out.indices.dispose();
    expect(out.dispatch.declined).toMatch(/webgpu-indexer: keys stored as bf16/);
  });

  it('leaks nothing: outputs are the only tensors a call leaves', async () => {
    const c: Case = { B: 2, S: 1, HI: 4, DI: 8, lengths: [300, 200], topk: 50 };
    const ops = integerOperands(c, 17);
    await select(c, ops, 'fused', true); // pipelines and scratch built
    const before = backend.memory();
    for (const keep of [true, false]) await select(c, ops, 'fused', keep);
    expect(backend.memory()).toEqual(before);
  });
}, { checkLeaks: true });
