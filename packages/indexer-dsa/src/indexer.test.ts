// The lightning indexer on its own: projections and scores against the float64 reference, every
// implementation against the others, the host top-k, the Hadamard rotation, named errors.
import { IndexerKeyCache } from '@attnkit/kvcache';
import { type Backend, CpuBackend, type Tensor, f32ToFp8E4m3, fp8E4m3ToF32, tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { compareArrays, describeEachBackend, SeededRandom } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import { resolveDSAConfig } from './config.js';
import { hadamardMatrix } from './hadamard.js';
import { type IndexerSelection, LightningIndexer } from './indexer.js';
import { selectedKeys } from './inspect.js';
import { isGpujsKernelHost } from '@attnkit/tensor-core';
import { topKInto } from './kernels/top-k.js';
import { indexerReference } from './reference.js';
import { expectRejects, expectThrows } from './testing/fixtures/expect-error.js';
import { SMALL, randomInput } from './testing/fixtures/layers.js';
import { clearBoundaries, randomDSAWeights, referenceDSA, uploadDSAWeights } from './testing/fixtures/reference-dsa.js';

const { available } = await availableBackends();
const TOL = { atol: 1e-4, rtol: 1e-3 };
const SAME = { atol: 2e-6, rtol: 2e-5 };
const CONFIG = resolveDSAConfig({ ...SMALL, indexTopk: 7 });

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: { atol: number; rtol: number }, what: string): void {
  const cmp = compareArrays(actual, expected, tol);
  expect(cmp.pass, `${what}: ${cmp.message}`).toBe(true);
}

/** The indexer of a random DSA layer's weights (under `indexer.`), the weights on the host, and x / qr. */
function randomIndexer(backend: Backend, seed: number, precision: 'exact' | 'fp8' = 'exact'): { indexer: LightningIndexer; host: ReturnType<typeof randomDSAWeights> } {
  const config = resolveDSAConfig({ ...CONFIG, indexPrecision: precision });
  const host = randomDSAWeights(config, seed);
  const record = uploadDSAWeights(backend, config, host);
  for (const [key, t] of Object.entries(record)) if (!key.startsWith('indexer.')) t.dispose();
  const mine = Object.fromEntries(Object.entries(record).filter(([key]) => key.startsWith('indexer.')));
  return { indexer: LightningIndexer.fromRecord(backend, config.indexer, mine, { prefix: 'indexer.', ownsWeights: true }), host };
}

/** qr = q_norm(wq_a·x) on the host, as MLA computes it. */
function queryLatent(backend: Backend, host: ReturnType<typeof randomDSAWeights>, x: Float32Array, rows: number): Tensor {
  const { dim, qLoraRank: Cq, normEps } = CONFIG;
  const wqA = host.wq_a ?? new Float32Array();
  const qNorm = host.q_norm ?? new Float32Array();
  const out = new Float32Array(rows * Cq);
  for (let r = 0; r < rows; r++) {
    const v = Array.from({ length: Cq }, (_, o) => {
      let s = 0;
      for (let i = 0; i < dim; i++) s += (wqA[o * dim + i] as number) * (x[r * dim + i] as number);
      return s;
    });
    const inv = 1 / Math.sqrt(v.reduce((a, e) => a + e * e, 0) / Cq + normEps);
    v.forEach((e, o) => (out[r * Cq + o] = e * inv * (qNorm[o] as number)));
  }
  return tensor(backend, out, [rows, Cq]);
}

async function lists(selection: IndexerSelection): Promise<number[][]> {
  return selectedKeys(selection);
}

describe('host top-k', () => {
  it('returns the k best, best first, ties toward the lower index, NaN with −∞', () => {
    const row = Float32Array.from([3, 1, 3, Number.NaN, 7, -Infinity, 3, 1]);
    const out = new Int32Array(8).fill(-1);
    expect(topKInto(row, 8, 3, out, 0, new Float32Array(8))).toBe(3);
    expect(Array.from(out.subarray(0, 3))).toEqual([4, 0, 2]);
    expect(topKInto(row, 8, 8, out, 0, new Float32Array(8))).toBe(8);
    expect(Array.from(out)).toEqual([4, 0, 2, 6, 1, 7, 3, 5]);
    const rng = new SeededRandom(2);
    for (let trial = 0; trial < 40; trial++) {
      const n = rng.int(1, 200);
      const k = rng.int(1, n + 3);
      const r = Float32Array.from({ length: n }, () => rng.int(0, 20));
      const got = new Int32Array(k).fill(-1);
      const written = topKInto(r, n, k, got, 0, new Float32Array(n));
      const want = Array.from({ length: n }, (_, t) => t).sort((u, v) => (r[v] as number) - (r[u] as number) || u - v);
      expect(written).toBe(Math.min(k, n));
      expect(Array.from(got.subarray(0, written))).toEqual(want.slice(0, written));
    }
  });

  // the radix select orders float bits: signs, ±0, ±∞, NaN, subnormals and ties across digit boundaries
  it('orders negative values, ±0, ±∞, NaN and subnormals as a float sort does', () => {
    const rng = new SeededRandom(3);
    const specials = [0, -0, Infinity, -Infinity, Number.NaN, 1e-40, -1e-40, 3.4e38, -3.4e38, 1, -1];
    const rank = (x: number): number => (Number.isNaN(x) ? -Infinity : x);
    for (let trial = 0; trial < 60; trial++) {
      const n = rng.int(1, trial < 50 ? 400 : 20000);
      const k = rng.int(1, Math.min(n + 3, 3000));
      const r = Float32Array.from({ length: n }, () => (rng.next() < 0.2 ? rng.pick(specials) : rng.next() < 0.5 ? rng.int(-8, 8) * 0.25 : rng.normal() * 10 ** rng.int(-30, 30)));
      const got = new Int32Array(k).fill(-1);
      const written = topKInto(r, n, k, got, 0, new Float32Array(n));
      const want = Array.from({ length: n }, (_, t) => t).sort((u, v) => rank(r[v] as number) - rank(r[u] as number) || u - v);
      expect(written).toBe(Math.min(k, n));
      expect(Array.from(got.subarray(0, written)), `trial ${trial}`).toEqual(want.slice(0, written));
    }
  });
});

describe('Hadamard rotation', () => {
  it('is the orthonormal Sylvester matrix: H·Hᵀ = I, so rotated dot products are unchanged', () => {
    for (const D of [1, 2, 16, 128]) {
      const h = hadamardMatrix(D);
      for (let i = 0; i < D; i++) {
        for (let j = 0; j < D; j++) {
          let s = 0;
          for (let k = 0; k < D; k++) s += (h[i * D + k] as number) * (h[j * D + k] as number);
          expect(s).toBeCloseTo(i === j ? 1 : 0, 6);
        }
      }
    }
    expect(Array.from(hadamardMatrix(4)).map((v) => Math.sign(v))).toEqual([1, 1, 1, 1, 1, -1, 1, -1, 1, 1, -1, -1, 1, -1, -1, 1]);
    expectThrows(() => hadamardMatrix(24), 'ConfigError', 'power-of-two');
  });
});

describeEachBackend(available, (name) => `LightningIndexer on ${name}`, (getBackend, backendName) => {
  it('scores and selects as the float64 reference (keys, scores, picks)', async () => {
    const backend = getBackend();
    const B = 2;
    const T = 23;
    const { indexer, host } = randomIndexer(backend, 11);
    using _indexer = indexer;
    const { host: xs, x } = randomInput(backend, B, T, CONFIG.dim, 12);
    using _x = x;
    using qr = queryLatent(backend, host, xs, B * T);
    using qr3 = tensor(backend, await qr.data(), [B, T, CONFIG.qLoraRank]);
    const ref = referenceDSA(CONFIG, host, xs, B, T);
    const clear = clearBoundaries(ref.scores, B, T, CONFIG.indexTopk);
    using cache = indexer.createCache({ batchSize: B });
    using selection = await indexer.forward(x, qr3, { cache, keepScores: true });
    expect(selection.topk).toBe(CONFIG.indexTopk);
    expect(selection.indices.shape).toEqual([B, T, 1, CONFIG.indexTopk]);
    expect(selection.startPositions).toEqual([0, 0]);
    using keys = await cache.readIndexKeys();
    expectClose(await keys.data(), ref.indexKeys, TOL, 'cached keys (LayerNorm, half-split RoPE on the first dr)');
    expectClose(selection.scores ? await selection.scores.data() : [], ref.scores, TOL, 'scores, −∞ where not visible');
    const got = await lists(selection);
    expect(clear.filter(Boolean).length).toBeGreaterThan(B * T - 3);
    for (const [row, keep] of got.entries()) if (clear[row]) expect(keep, `query ${row}`).toEqual(ref.selected[row]);
  });

  it('gives the same picks and scores through every implementation, for prefill, chunks and decode', async () => {
    const backend = getBackend();
    const { indexer } = randomIndexer(backend, 21);
    using _indexer = indexer;
    const B = 2;
    const T = 30;
    // Queries and weights straight from random numbers: the scoring stage on its own.
    const rng = new SeededRandom(23);
    const { indexNHeads: HI, indexHeadDim: DI } = CONFIG;
    for (const S of [T, 4, 1]) {
      const lengths = S === T ? [T, T] : [T, T - 3];
      using q = tensor(backend, rng.normalArray(B * S * HI * DI), [B, S, HI, DI]);
      using weights = tensor(backend, rng.normalArray(B * S * HI, 0.3), [B, S, HI]);
      for (const dtype of ['f32', 'bf16', 'fp8e4m3'] as const) {
        using cache = new IndexerKeyCache(backend, { batchSize: B, keyDim: DI, dtype });
        using rows = tensor(backend, rng.normalArray(B * T * DI), [B, T, 1, DI]);
        const view = await cache.updateAndFetch(rows, null);
        cache.truncate(lengths);
        const trimmed = { ...view, lengths };
        const queries = { q, weights, dispose: () => undefined, [Symbol.dispose]: () => undefined };
        using ref = await indexer.select(queries, trimmed, { implementation: 'reference', keepScores: true });
        const refScores = ref.scores ? await ref.scores.data() : new Float32Array();
        const refPicks = await lists(ref);
        for (const implementation of ['composed', 'auto'] as const) {
          using got = await indexer.select(queries, trimmed, { implementation, keepScores: true });
          const what = `S ${S}, ${dtype} keys, ${implementation} (${got.dispatch.implementation})`;
          expectClose(got.scores ? await got.scores.data() : [], refScores, SAME, `${what}: scores`);
          expect(await lists(got), `${what}: picks`).toEqual(refPicks);
          using noScores = await indexer.select(queries, trimmed, { implementation });
          expect(noScores.scores).toBeNull();
          expect(await noScores.indices.dataInt(), `${what}: picks without scores`).toEqual(await got.indices.dataInt());
        }
      }
    }
    if (backendName === 'cpu') {
      const { q, weights } = { q: tensor(backend, new Float32Array(HI * DI), [1, 1, HI, DI]), weights: tensor(backend, new Float32Array(HI), [1, 1, HI]) };
      using _q = q;
      using _w = weights;
      using keys = tensor(backend, new Float32Array(DI), [1, 1, 1, DI]);
      using s = await indexer.select({ q, weights, dispose: () => undefined, [Symbol.dispose]: () => undefined }, { keys, values: null, rowMap: null, lengths: [1] }, { implementation: 'fused' });
      expect(s.dispatch.implementation).toBe('fused:cpu-indexer');
    }
  });

  it('ranks NaN index scores as −∞ (after every number, ties by index, before hidden keys) through every implementation', async () => {
    const backend = getBackend();
    const { indexer } = randomIndexer(backend, 41);
    using _indexer = indexer;
    const { indexNHeads: HI, indexHeadDim: DI, indexTopk: K } = CONFIG;
    const T = 12;
    const S = 4; // queries at positions 8–11: 9–12 visible keys, more than K = 7
    const rng = new SeededRandom(43);
    const w = rng.normalArray(S * HI, 0.3);
    w.fill(Number.NaN, HI, 2 * HI); // query 1: every score NaN
    const k = rng.normalArray(T * DI);
    k.fill(Number.NaN, 3 * DI, 4 * DI); // key 3: ReLU(NaN) = 0, so a score of exactly 0
    using q = tensor(backend, rng.normalArray(S * HI * DI), [1, S, HI, DI]);
    using weights = tensor(backend, w, [1, S, HI]);
    using cache = new IndexerKeyCache(backend, { batchSize: 1, keyDim: DI });
    using rows = tensor(backend, k, [1, T, 1, DI]);
    const view = await cache.updateAndFetch(rows, null);
    const queries = { q, weights, dispose: () => undefined, [Symbol.dispose]: () => undefined };
    using ref = await indexer.select(queries, view, { implementation: 'reference' });
    const refPicks = await lists(ref);
    expect(refPicks[1], 'query 1: the first K visible keys, by index').toEqual(Array.from({ length: K }, (_, t) => t));
    for (const implementation of ['composed', 'auto'] as const) {
      using got = await indexer.select(queries, view, { implementation });
      expect(await lists(got), `${implementation} (${got.dispatch.implementation})`).toEqual(refPicks);
    }
  });

  it('decodes token by token exactly as it prefills', async () => {
    const backend = getBackend();
    const { indexer, host } = randomIndexer(backend, 31);
    using _indexer = indexer;
    const T = 16;
    const { host: xs, x } = randomInput(backend, 1, T, CONFIG.dim, 32);
    using _x = x;
    using qr = queryLatent(backend, host, xs, T);
    using qr3 = tensor(backend, await qr.data(), [1, T, CONFIG.qLoraRank]);
    using whole = await indexer.forward(x, qr3, { keepScores: true });
    const wholeScores = whole.scores ? await whole.scores.data() : new Float32Array();
    const wholePicks = await lists(whole);
    using cache = indexer.createCache({ batchSize: 1 });
    const qrHost = await qr.data();
    for (let t = 0; t < T; t++) {
      using xt = tensor(backend, xs.subarray(t * CONFIG.dim, (t + 1) * CONFIG.dim), [1, 1, CONFIG.dim]);
      using qt = tensor(backend, qrHost.subarray(t * CONFIG.qLoraRank, (t + 1) * CONFIG.qLoraRank), [1, 1, CONFIG.qLoraRank]);
      using step = await indexer.forward(xt, qt, { cache, keepScores: true });
      expect(step.startPositions).toEqual([t]);
      const row = step.scores ? await step.scores.data() : new Float32Array();
      expectClose(row, wholeScores.subarray(t * T, t * T + t + 1), SAME, `scores of token ${t}`);
      expect((await lists(step))[0], `picks of token ${t}`).toEqual(wholePicks[t]);
    }
  });

  it('under fp8 precision rotates and quantises queries and keys as deployed', async () => {
    const backend = getBackend();
    const { indexer: exact, host } = randomIndexer(backend, 41);
    using _exact = exact;
    const { indexer: fp8 } = randomIndexer(backend, 41, 'fp8');
    using _fp8 = fp8;
    const T = 12;
    const { host: xs, x } = randomInput(backend, 1, T, CONFIG.dim, 42);
    using _x = x;
    using qr = queryLatent(backend, host, xs, T);
    using qr3 = tensor(backend, await qr.data(), [1, T, CONFIG.qLoraRank]);
    using positions = tensor(backend, Int32Array.from({ length: T }, (_, i) => i), [T], { dtype: 'i32' });
    using keysExact = await exact.projectKeys(x, positions);
    using keysRotated = await fp8.projectKeys(x, positions);
    // The rotation is orthonormal: the keys keep their norms (and dot products).
    const norm = (v: Float32Array, r: number): number => Math.hypot(...v.subarray(r * CONFIG.indexHeadDim, (r + 1) * CONFIG.indexHeadDim));
    const ke = await keysExact.data();
    const kr = await keysRotated.data();
    for (let r = 0; r < T; r++) expect(norm(kr, r)).toBeCloseTo(norm(ke, r), 4);
    expect(compareArrays(kr, ke, SAME).pass, 'rotated keys differ channel by channel').toBe(false);
    using queries = await fp8.projectQueries(x, qr3, positions);
    // Each head's D_I values are e4m3 codes times one scale (exact: amax/448, so the largest is ±448·scale).
    const q = await queries.q.data();
    const DI = CONFIG.indexHeadDim;
    for (let r = 0; r < q.length / DI; r++) {
      const block = q.subarray(r * DI, (r + 1) * DI);
      const amax = block.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      for (const v of block) {
        const code = (v / amax) * 448;
        expect(Math.abs(fp8E4m3ToF32(f32ToFp8E4m3(code)) - code)).toBeLessThanOrEqual(1e-4 * Math.abs(code) + 1e-6);
      }
    }
    using plain = new IndexerKeyCache(backend, { batchSize: 1, keyDim: CONFIG.indexHeadDim });
    await expectRejects(fp8.forward(x, qr3, { cache: plain }), 'ConfigError', 'fp8e4m3');
    expectThrows(() => fp8.createCache({ batchSize: 1, dtype: 'bf16' }), 'ConfigError', 'fp8e4m3');
  });

  it('leaks nothing and refuses bad inputs with named errors', async () => {
    const backend = getBackend();
    const before = backend.memory();
    const { indexer, host } = randomIndexer(backend, 51);
    const { host: xs, x } = randomInput(backend, 2, 5, CONFIG.dim, 52);
    const qr = queryLatent(backend, host, xs, 10);
    const qr3 = tensor(backend, await qr.data(), [2, 5, CONFIG.qLoraRank]);
    const cache = indexer.createCache({ batchSize: 2, maxCapacity: 8, initialCapacity: 8 });
    const held = backend.memory();
    for (const implementation of ['auto', 'composed', 'reference'] as const) {
      (await indexer.forward(x, qr3, { implementation, keepScores: true })).dispose();
      (await indexer.forward(x, qr3, { cache, implementation })).dispose();
      cache.truncate(0);
    }
    expect(backend.memory()).toEqual(held);
    (await indexer.forward(x, qr3, { cache })).dispose();
    await expectRejects(indexer.forward(x, qr3, { cache }), 'CapacityError');
    expect(cache.lengths).toEqual([5, 5]);
    await expectRejects(indexer.forward(x, qr3, { cache, implementation: 'fastest' as never }), 'ConfigError', 'implementation');
    expect(cache.lengths).toEqual([5, 5]);
    await expectRejects(indexer.forward(x, qr), 'ShapeError', 'queryLatent');
    await expectRejects(indexer.forward(qr3, qr3), 'ShapeError', `[B, S, ${CONFIG.dim}]`);
    {
      using badPositions = tensor(backend, new Int32Array(3), [3], { dtype: 'i32' });
      await expectRejects(indexer.projectKeys(x, badPositions), 'ShapeError', 'positions');
    }
    if (backendName === 'cpu' || isGpujsKernelHost(backend)) {
      using fused = await indexer.forward(x, qr3, { implementation: 'fused' });
      expect(fused.dispatch.implementation).toMatch(/^fused:(cpu|webgpu|gpujs)-indexer$/);
    } else {
      await expectRejects(indexer.forward(x, qr3, { implementation: 'fused' }), 'ConfigError', 'cpu-indexer');
    }
    expect(backend.memory()).toEqual(held);
    cache.dispose();
    qr3.dispose();
    qr.dispose();
    x.dispose();
    indexer.dispose();
    expect(backend.memory()).toEqual(before);
    await expectRejects(indexer.forward(x, qr3), 'BackendError');
  });
}, { lifetime: 'test' });

describe('bad configs and weights', () => {
  it('refuses what DSA cannot run', () => {
    expectThrows(() => resolveDSAConfig({ ...SMALL, qLoraRank: 0 }), 'ConfigError', 'qLoraRank');
    expectThrows(() => resolveDSAConfig({ ...SMALL, indexTopk: 0 }), 'ConfigError', 'indexTopk');
    expectThrows(() => resolveDSAConfig({ ...SMALL, indexTopk: 2.5 }), 'ConfigError', 'indexTopk');
    expectThrows(() => resolveDSAConfig({ ...SMALL, indexHeadDim: 6 }), 'ConfigError', 'qkRopeHeadDim ≤ indexHeadDim');
    expectThrows(() => resolveDSAConfig({ ...SMALL, indexHeadDim: 24, indexPrecision: 'fp8' }), 'ConfigError', 'power-of-two');
    expectThrows(() => resolveDSAConfig({ ...SMALL, indexPrecision: 'int4' as never }), 'ConfigError', 'indexPrecision');
    expectThrows(() => resolveDSAConfig({ ...SMALL, indexNHeads: 0 }), 'ConfigError', 'indexNHeads');
  });

  it('refuses weights whose shapes do not match the config, naming the fields', async () => {
    const cpu = new CpuBackend();
    const host = randomDSAWeights(CONFIG, 61);
    const record = uploadDSAWeights(cpu, CONFIG, host);
    const indexerOnly = Object.fromEntries(Object.entries(record).filter(([key]) => key.startsWith('indexer.')));
    const wrongHeads = resolveDSAConfig({ ...CONFIG, indexNHeads: 2 });
    expectThrows(() => LightningIndexer.fromRecord(cpu, wrongHeads.indexer, indexerOnly, { prefix: 'indexer.' }), 'ShapeError', 'indexNHeads·indexHeadDim');
    const wrongDim = resolveDSAConfig({ ...CONFIG, indexHeadDim: 32 });
    expectThrows(() => LightningIndexer.fromRecord(cpu, wrongDim.indexer, indexerOnly, { prefix: 'indexer.' }), 'ShapeError', 'indexHeadDim');
    expectThrows(() => LightningIndexer.fromRecord(cpu, CONFIG.indexer, { ...indexerOnly, 'indexer.wv': tensor(cpu, [1], [1]) }, { prefix: 'indexer.' }), 'ConfigError', 'indexer.wv');
    const { ['indexer.k_norm.bias']: _bias, ...noBias } = indexerOnly;
    expectThrows(() => LightningIndexer.fromRecord(cpu, CONFIG.indexer, noBias, { prefix: 'indexer.' }), 'ConfigError', 'k_norm.bias');
    expectThrows(() => LightningIndexer.fromRecord(cpu, CONFIG.indexer, { ...indexerOnly, 'indexer.wk': indexerOnly['indexer.wk'] as Tensor, 'indexer.wk.weight': indexerOnly['indexer.wk'] as Tensor }, { prefix: 'indexer.' }), 'ConfigError', 'both');
    for (const t of Object.values(record)) t.dispose();
    await cpu.dispose();
  });
});

// Keep the reference export honest: it is what `implementation: 'reference'` runs.
describe('indexerReference', () => {
  it('leaves −1 after a short row and −∞ past the query', () => {
    const out = indexerReference({
      q: Float32Array.from([1, 0]),
      weights: Float32Array.from([1]),
      keys: Float32Array.from([2, 0, 1, 0, -1, 0]),
      B: 1,
      S: 1,
      heads: 1,
      headDim: 2,
      T: 3,
      lengths: [1],
      topk: 2,
    });
    expect(Array.from(out.scores)).toEqual([2, -Infinity, -Infinity]);
    expect(Array.from(out.indices)).toEqual([0, -1]);
  });
});
