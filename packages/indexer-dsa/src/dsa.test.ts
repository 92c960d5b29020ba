// The DSA layer against a float64 reference, against dense MLA when nothing is dropped, and its
// cache paths (decode, chunked prefill, ragged batches) against prefill, on every backend here.
import { MLA, type MLAOrder } from '@attnkit/attention-mla';
import { IndexerKeyCache, MLALatentCache } from '@attnkit/kvcache';
import { type Tensor, concat, slice, tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { compareArrays, describeEachBackend } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { DSACache } from './cache.js';
import { type DSAConfigInput, resolveDSAConfig } from './config.js';
import { DSA } from './dsa.js';
import { selectedKeys, selectionMask } from './inspect.js';
import { expectRejects } from './testing/fixtures/expect-error.js';
import { SMALL, randomInput, randomLayer } from './testing/fixtures/layers.js';
import { clearBoundaries, referenceDSA, uploadDSAWeights } from './testing/fixtures/reference-dsa.js';

const { available } = await availableBackends();
const ORDERS: readonly MLAOrder[] = ['naive', 'absorbed'];
/** The golden vectors' tolerance: ~100× what a float32 evaluation of these sizes reaches. */
const TOL = { atol: 1e-4, rtol: 1e-3 };
/** The same function evaluated two ways in float32. */
const SAME = { atol: 2e-6, rtol: 2e-5 };
const YARN: DSAConfigInput = { ...SMALL, qLoraRank: 8, indexTopk: 5, maxSeqLen: 256, yarn: { originalSeqLen: 16, factor: 8, mscale: 0.707 } };

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: { atol: number; rtol: number }, what: string): void {
  const cmp = compareArrays(actual, expected, tol);
  expect(cmp.pass, `${what}: ${cmp.message}`).toBe(true);
}

async function read(t: Tensor): Promise<Float32Array> {
  using owned = t;
  return await owned.data();
}

/** Runs x in token groups through a cache; y for every token, and each query's selected keys. */
async function runChunks(layer: DSA, cache: DSACache, x: Tensor, chunks: readonly number[], order: 'auto' | MLAOrder): Promise<{ y: Float32Array; selected: number[][] }> {
  const [B = 0, , width = 0] = x.shape;
  const outs: Tensor[] = [];
  const perChunk: number[][][] = [];
  try {
    let start = 0;
    for (const n of chunks) {
      using part = await slice(x, [0, start, 0], [B, n, width]);
      const r = await layer.forwardWithIndex(part, { cache, order, keepScores: false });
      outs.push(r.y);
      perChunk.push(await selectedKeys(r.index));
      r.index.dispose();
      start += n;
    }
    const y = await read(await concat(outs, 1));
    // Lists come per chunk as [b][i]; reorder to [b][token].
    const selected: number[][] = [];
    for (let b = 0; b < B; b++) for (const [c, n] of chunks.entries()) for (let i = 0; i < n; i++) selected.push(perChunk[c]?.[b * n + i] ?? []);
    return { y, selected };
  } finally {
    for (const t of outs) t.dispose();
  }
}

describeEachBackend(available, (name) => `DSA on ${name}`, (getBackend) => {
  for (const [name, input] of [
    ['top-6 of up to 19', SMALL],
    ['YaRN, top-5', YARN],
  ] as const) {
    it(`matches the float64 reference in both orders: outputs, scores, selections (${name})`, async () => {
      const backend = getBackend();
      const B = 2;
      const T = 19;
      const { layer, config, host } = await randomLayer(backend, input, 11);
      using _layer = layer;
      const { host: xs, x } = randomInput(backend, B, T, config.dim, 12);
      using _x = x;
      const ref = referenceDSA(config, host, xs, B, T);
      const clear = clearBoundaries(ref.scores, B, T, config.indexTopk);
      expect(clear.filter(Boolean).length, 'rows with a clear top-k boundary').toBeGreaterThan(B * T - 3);
      for (const order of ORDERS) {
        using r = await layer.forwardWithIndex(x, { order });
        expect(r.sparse).toBe(true);
        expect(r.order).toBe(order);
        const scores = r.index.scores ? await r.index.scores.data() : new Float32Array();
        expectClose(scores, ref.scores, TOL, `${order}: scores`);
        const got = await selectedKeys(r.index);
        for (const [row, keys] of got.entries()) if (clear[row]) expect(keys, `${order}: selection of query ${row}`).toEqual(ref.selected[row]);
        // A query's output depends on its own selection only: compare every row whose selection is settled.
        const y = await r.y.data();
        const D = config.dim;
        for (const [row, ok] of clear.entries()) if (ok) expectClose(y.subarray(row * D, (row + 1) * D), ref.y.subarray(row * D, (row + 1) * D), TOL, `${order}: y of query ${row}`);
      }
    });
  }

  it('reduces exactly to dense MLA when index_topk covers every visible token', async () => {
    const backend = getBackend();
    const config = resolveDSAConfig({ ...SMALL, indexTopk: 32 });
    const { layer, host } = await randomLayer(backend, config, 21);
    using _layer = layer;
    // The same MLA weights in a plain MLA layer.
    const record = uploadDSAWeights(backend, config, host);
    for (const key of Object.keys(record)) if (key.startsWith('indexer.')) record[key]?.dispose();
    const mlaRecord = Object.fromEntries(Object.entries(record).filter(([key]) => !key.startsWith('indexer.')));
    using mla = await MLA.fromRecord(backend, config, mlaRecord, { ownsWeights: true });
    const { x } = randomInput(backend, 2, 20, config.dim, 22);
    using _x = x;
    for (const order of ORDERS) {
      const dense = await read(await mla.forward(x, { order }));
      // The layer sees that nothing is dropped and runs MLA's dense path: the same numbers.
      expect(await read(await layer.forward(x, { order })), `${order}: DSA vs MLA`).toEqual(dense);
      using r = await layer.forwardWithIndex(x, { order });
      expect(r.sparse).toBe(false);
      expect(r.index.coversAllVisible).toBe(true);
      expect(await selectionMask(r.index)).toEqual(causalMask(2, 20));
      // Attending over the full selection through the sparse core gives them again, to f32 rounding.
      using projection = await layer.mla.project(x, 0);
      const view = { keys: projection.kvRows, values: null, valueDim: config.kvLoraRank, rowMap: null, lengths: [20, 20] };
      const sparse = await read((await layer.mla.attend(projection, view, { order, selectedKeys: r.index.indices })).y);
      expectClose(sparse, dense, SAME, `${order}: sparse attention over every visible key vs dense`);
    }
  });

  it('decodes token by token and in chunks exactly as it prefills, with top-k active, in every order', async () => {
    const backend = getBackend();
    const B = 2;
    const T = 14;
    const { layer, config } = await randomLayer(backend, YARN, 31);
    using _layer = layer;
    const { x } = randomInput(backend, B, T, config.dim, 32);
    using _x = x;
    using whole = await layer.forwardWithIndex(x);
    const prefill = await whole.y.data();
    const prefillSelected = await selectedKeys(whole.index);
    using positions = tensor(backend, Int32Array.from({ length: B * T }, (_, i) => i % T), [B, T], { dtype: 'i32' });
    using keys = await layer.indexer.projectKeys(x, positions);
    const indexRows = await keys.data();
    for (const order of ['auto', ...ORDERS] as const) {
      for (const chunks of [new Array<number>(T).fill(1), [5, 1, 4, 4], [T]]) {
        using cache = layer.createCache({ batchSize: B, maxCapacity: 16 });
        const { y, selected } = await runChunks(layer, cache, x, chunks, order);
        expectClose(y, prefill, SAME, `${order}, chunks ${chunks.join('+')}`);
        expect(selected, `${order}, chunks ${chunks.join('+')}: selections`).toEqual(prefillSelected);
        expect(cache.lengths).toEqual([T, T]);
        using stored = await cache.indexKeys.readIndexKeys();
        expect(await stored.data(), 'cached indexer keys').toEqual(indexRows);
      }
    }
  });

  it('serves a ragged batch: each sequence at its own position, its own selection', async () => {
    const backend = getBackend();
    const { layer, config, host } = await randomLayer(backend, SMALL, 41);
    using _layer = layer;
    const total = 12;
    const lengths = [11, 7];
    const { host: xs, x } = randomInput(backend, 2, total, config.dim, 42);
    using _x = x;
    using cache = layer.createCache({ batchSize: 2 });
    using head = await slice(x, [0, 0, 0], [2, 11, config.dim]);
    (await layer.forward(head, { cache })).dispose();
    cache.truncate(lengths);
    const stepHost = new Float32Array(2 * config.dim);
    stepHost.set(xs.subarray(11 * config.dim, 12 * config.dim), 0);
    stepHost.set(xs.subarray((total + 7) * config.dim, (total + 8) * config.dim), config.dim);
    using step = tensor(backend, stepHost, [2, 1, config.dim]);
    for (const order of ORDERS) {
      using r = await layer.forwardWithIndex(step, { cache, order });
      cache.truncate(lengths);
      const y = await r.y.data();
      const selected = await selectedKeys(r.index);
      expect(r.index.startPositions).toEqual(lengths);
      for (const [b, len] of lengths.entries()) {
        const seq = xs.subarray(b * total * config.dim, (b * total + len + 1) * config.dim);
        const ref = referenceDSA(config, host, seq, 1, len + 1);
        expect(selected[b], `${order}, sequence ${b}: selection`).toEqual(ref.selected[len]);
        expectClose(y.subarray(b * config.dim, (b + 1) * config.dim), ref.y.subarray(len * config.dim), TOL, `${order}, sequence ${b}`);
      }
    }
  });

  it('gives the same outputs through every indexer and attention-core implementation', async () => {
    const backend = getBackend();
    const { layer, config } = await randomLayer(backend, SMALL, 51);
    using _layer = layer;
    const { x } = randomInput(backend, 1, 17, config.dim, 52);
    using _x = x;
    const want = await read(await layer.forward(x, { indexerImplementation: 'reference', implementation: 'reference', order: 'naive' }));
    for (const indexerImplementation of ['reference', 'composed', 'auto'] as const) {
      for (const implementation of ['composed', 'auto'] as const) {
        const y = await read(await layer.forward(x, { indexerImplementation, implementation }));
        expectClose(y, want, SAME, `indexer ${indexerImplementation}, attention ${implementation}`);
      }
    }
  });

  it('runs the deployed fp8 indexer path over an fp8 key cache (loose against exact)', async () => {
    const backend = getBackend();
    const exactConfig = resolveDSAConfig({ ...SMALL, indexTopk: 8 });
    const { layer: exact, host } = await randomLayer(backend, exactConfig, 61);
    using _exact = exact;
    const fp8Config = resolveDSAConfig({ ...exactConfig, indexPrecision: 'fp8' });
    using fp8 = await DSA.fromRecord(backend, fp8Config, uploadDSAWeights(backend, fp8Config, host), { ownsWeights: true });
    const { x } = randomInput(backend, 1, 16, exactConfig.dim, 62);
    using _x = x;
    using cache = fp8.createCache({ batchSize: 1 });
    expect(cache.indexKeys.dtype).toBe('fp8e4m3');
    expect(cache.indexKeys.blockSize).toBe(16);
    using a = await exact.forwardWithIndex(x);
    using b = await fp8.forwardWithIndex(x, { cache });
    using c = await fp8.forwardWithIndex(x);
    const sa = a.index.scores ? await a.index.scores.data() : new Float32Array();
    const sb = b.index.scores ? await b.index.scores.data() : new Float32Array();
    // e4m3 keeps 3 mantissa bits: each quantised value is off by up to 2⁻⁴ of itself.
    const largest = sa.reduce((m, v) => (Number.isFinite(v) ? Math.max(m, Math.abs(v)) : m), 0);
    expectClose(sb, sa, { atol: 0.08 * largest, rtol: 0 }, 'fp8 scores vs exact (within 8% of the largest score)');
    expect(await c.y.data(), 'fp8 with and without a cache').toEqual(await b.y.data());
    using f32Cache = new DSACache(backend, exactConfig, { batchSize: 1 });
    await expectRejects(fp8.forward(x, { cache: f32Cache }), 'ConfigError', 'fp8e4m3');
    expect(() => new DSACache(backend, fp8Config, { batchSize: 1, indexDtype: 'f32' })).toThrow(/fp8e4m3/);
  });

  it('accepts any latent cache beside an IndexerKeyCache, and Hugging Face names', async () => {
    const backend = getBackend();
    const { layer, config, host } = await randomLayer(backend, SMALL, 71);
    using _layer = layer;
    using hf = await DSA.fromRecord(backend, config, uploadDSAWeights(backend, config, host, 'huggingface', 'model.layers.0.self_attn.'), {
      ownsWeights: true,
      prefix: 'model.layers.0.self_attn.',
    });
    const { x } = randomInput(backend, 1, 9, config.dim, 72);
    using _x = x;
    using latent = new MLALatentCache(backend, { batchSize: 1, kvLoraRank: config.kvLoraRank, ropeDim: config.qkRopeHeadDim, dtype: 'bf16' });
    using indexKeys = new IndexerKeyCache(backend, { batchSize: 1, keyDim: config.indexHeadDim });
    const a = await read(await layer.forward(x));
    const b = await read(await hf.forward(x, { cache: { latent, indexKeys } }));
    expectClose(b, a, { atol: 0.05, rtol: 0.05 }, 'HF names over a bf16 latent cache (loose: bf16 storage)');
    expect(latent.lengths).toEqual([9]);
    expect(indexKeys.lengths).toEqual([9]);
  });

  it('leaks nothing, and a failed call leaves both caches as they were', async () => {
    const backend = getBackend();
    const before = backend.memory();
    const { layer, config } = await randomLayer(backend, SMALL, 81);
    const { x } = randomInput(backend, 2, 5, config.dim, 82);
    const cache = layer.createCache({ batchSize: 2, maxCapacity: 10, initialCapacity: 10 });
    const held = backend.memory();
    for (const order of ['auto', ...ORDERS] as const) {
      (await layer.forward(x, { order })).dispose();
      (await layer.forwardWithIndex(x, { order })).dispose();
      (await layer.forward(x, { order, cache })).dispose();
      cache.truncate(0);
    }
    expect(backend.memory()).toEqual(held);

    (await layer.forward(x, { cache })).dispose();
    await expectRejects(layer.forward(x, { cache, order: 'fastest' as never }), 'ConfigError', 'order');
    expect(cache.lengths).toEqual([5, 5]);
    expect(cache.indexKeys.lengths).toEqual([5, 5]);
    await expectRejects(layer.forward(x, { cache, indexerImplementation: 'best' as never }), 'ConfigError');
    expect(cache.indexKeys.lengths).toEqual([5, 5]);
    await expectRejects(layer.forward(x, { cache, signal: AbortSignal.abort('stop') }), 'AbortedError');
    expect(cache.lengths).toEqual([5, 5]);
    (await layer.forward(x, { cache })).dispose();
    await expectRejects(layer.forward(x, { cache }), 'CapacityError');
    expect(cache.latent.lengths).toEqual([10, 10]);
    expect(cache.indexKeys.lengths).toEqual([10, 10]);
    expect(backend.memory()).toEqual(held);

    cache.dispose();
    x.dispose();
    layer.dispose();
    expect(backend.memory()).toEqual(before);
  });

  it('refuses bad inputs and mismatched caches with named errors', async () => {
    const backend = getBackend();
    const { layer, config } = await randomLayer(backend, SMALL, 91);
    using _layer = layer;
    const { x } = randomInput(backend, 2, 3, config.dim, 92);
    using _x = x;
    using wrongWidth = tensor(backend, new Float32Array(2 * 3 * 5), [2, 3, 5]);
    await expectRejects(layer.forward(wrongWidth), 'ShapeError', `[B, S, ${config.dim}]`);
    using one = layer.createCache({ batchSize: 1 });
    await expectRejects(layer.forward(x, { cache: one }), 'ShapeError', 'batch size 2');
    using cache = layer.createCache({ batchSize: 2 });
    (await layer.forward(x, { cache })).dispose();
    cache.indexKeys.truncate(2);
    await expectRejects(layer.forward(x, { cache }), 'ShapeError', 'same tokens');
    using narrow = new IndexerKeyCache(backend, { batchSize: 2, keyDim: 8 });
    await expectRejects(layer.forward(x, { cache: { latent: cache.latent, indexKeys: narrow } }), 'ShapeError', 'indexHeadDim');
    layer.dispose();
    await expectRejects(layer.forward(x), 'BackendError');
  });
}, { lifetime: 'test' });

function causalMask(B: number, T: number): Float32Array {
  const m = new Float32Array(B * T * T);
  for (let b = 0; b < B; b++) for (let p = 0; p < T; p++) m.fill(1, (b * T + p) * T, (b * T + p) * T + p + 1);
  return m;
}
