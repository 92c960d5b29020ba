// Every nsa_* golden case on every backend: stage by stage for the whole history, chunked
// compressed branch, token-by-token decode through a cache, and chunked prefill through it.
import { availableBackends } from '@attnkit/tensor-core/testing';
import { describeEachBackend, loadGoldenCases, type GoldenCase } from '@attnkit/testkit';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Backend } from '@attnkit/tensor-core';
import { NSACache } from '@attnkit/kvcache';
import { blockMask, expectGolden, loadNSACase, required, tokenRows } from './testing/fixtures/golden-case.js';

const cases = loadGoldenCases().filter((c) => c.variant === 'nsa');
const prefillCases = cases.filter((c) => c.manifest.config.q_positions !== undefined && !Array.isArray(c.manifest.config.q_positions));
const { available } = await availableBackends();

describe('nsa golden cases', () => {
  it('has the five nsa cases', () => {
    expect(cases.map((c) => c.name).sort()).toEqual(['nsa_decode', 'nsa_equal_blocks', 'nsa_mlp_phi', 'nsa_paper_blocks', 'nsa_short']);
  });

  describeEachBackend(available, (name) => name, (getBackend, backendName) => {
    let baseline: { liveBuffers: number; liveTensors: number };
    beforeEach(() => {
      const { liveBuffers, liveTensors } = getBackend().memory();
      baseline = { liveBuffers, liveTensors };
    });
    afterEach(() => {
      const { liveBuffers, liveTensors } = getBackend().memory();
      expect({ liveBuffers, liveTensors }, 'nothing leaks').toEqual(baseline);
    });

    for (const c of cases) {
      it(`${c.name}: every stage over the whole history`, async () => {
        await checkStages(c, getBackend(), {});
      });
      it(`${c.name}: every stage with the compressed branch in chunks of 7 queries`, async () => {
        await checkStages(c, getBackend(), { queryChunk: 7 });
      });
    }

    for (const c of prefillCases) {
      // Every token on the CPU; on the slower backends a one-call prefill of all but the last
      // 64 tokens, then 64 decode steps (several blocks complete on the way).
      const decodeFrom = backendName === 'cpu' ? 0 : Math.max(0, c.number('kv_len') - 64);
      it(`${c.name}: token-by-token decode through the cache equals the prefill${decodeFrom > 0 ? ` (from token ${decodeFrom})` : ''}`, async () => {
        using l = loadNSACase(c, getBackend());
        let first = decodeFrom > 0;
        await runThroughCache(c, l, () => {
          const size = first ? decodeFrom : 1;
          first = false;
          return size;
        });
      });
      it(`${c.name}: chunked prefill through the cache (chunks 5, 1, 33, 17, …)`, async () => {
        using l = loadNSACase(c, getBackend());
        const sizes = [5, 1, 33, 17];
        let call = 0;
        await runThroughCache(c, l, () => sizes[call++ % sizes.length] as number);
      });
    }

    it('nsa_paper_blocks: a rolled-back speculative chunk leaves no trace (cache truncate)', async () => {
      const c = required(cases.find((x) => x.name === 'nsa_paper_blocks'));
      using l = loadNSACase(c, getBackend());
      using cache = newCache(c, l);
      const rows = (key: string, t0: number, t1: number) => {
        const a = c.tensor(key);
        return l.upload(tokenRows(a.data, a.shape, t0, t1), [a.shape[0] as number, t1 - t0, ...a.shape.slice(2)]);
      };
      const step = async (t0: number, t1: number, draft = false): Promise<Float32Array> => {
        const x = draft ? l.upload(new Float32Array((t1 - t0) * c.number('x_dim')).fill(0.5), [1, t1 - t0, c.number('x_dim')]) : rows('x', t0, t1);
        const kNew = draft ? l.upload(new Float32Array((t1 - t0) * 2 * 32).fill(3), [1, t1 - t0, 2, 32]) : rows('k', t0, t1);
        const { out } = await l.nsa.forward(rows('q', t0, t1), kNew, rows('v', t0, t1), x, { cache });
        using o = out;
        return await o.data();
      };
      await step(0, 200);
      await step(200, 250, true); // a draft that completes blocks 11–14 with wrong keys, then is rejected
      cache.truncate(200);
      const rest = await step(200, 300);
      expectGolden(c, 'out after the rollback', rest, tokenRows(c.tensor('out').data, c.tensor('out').shape, 200, 300));
    });

    it('nsa_decode: prefill 299 tokens into the cache, then the decode step', async () => {
      const c = required(cases.find((x) => x.name === 'nsa_decode'));
      using l = loadNSACase(c, getBackend());
      const T = c.number('kv_len');
      const kShape = c.tensor('k').shape;
      const vShape = c.tensor('v').shape;
      using cache = newCache(c, l);
      const kPast = l.upload(tokenRows(c.tensor('k').data, kShape, 0, T - 1), [kShape[0] as number, T - 1, ...kShape.slice(2)]);
      const vPast = l.upload(tokenRows(c.tensor('v').data, vShape, 0, T - 1), [vShape[0] as number, T - 1, ...vShape.slice(2)]);
      await cache.updateAndFetch(kPast, vPast);
      const kNew = l.upload(tokenRows(c.tensor('k').data, kShape, T - 1, T), [kShape[0] as number, 1, ...kShape.slice(2)]);
      const vNew = l.upload(tokenRows(c.tensor('v').data, vShape, T - 1, T), [vShape[0] as number, 1, ...vShape.slice(2)]);
      const { out, stages } = await l.nsa.forward(l.q, kNew, vNew, l.x, { cache, returnStages: true });
      using _o = out;
      using s = required(stages);
      expectGolden(c, 'out', await out.data(), c.tensor('out').data);
      expectGolden(c, 'k_cmp', await s.kCmp.data(), c.tensor('k_cmp').data);
      expectGolden(c, 'block_scores', await s.blockScores.data(), c.tensor('block_scores').data);
    });
  }, { lifetime: 'test' });
});

async function checkStages(c: GoldenCase, backend: Backend, options: { queryChunk?: number }): Promise<void> {
  using l = loadNSACase(c, backend);
  const { out, stages } = await l.nsa.forward(l.q, l.k, l.v, l.x, { returnStages: true, ...options });
  using _o = out;
  using s = required(stages);
  const nSlc = c.number('n_slc_blocks');
  expect(s.blockScores.shape).toEqual(c.tensor('block_scores').shape);
  expect(s.kCmp.shape).toEqual(c.tensor('k_cmp').shape);
  expect(s.selectedBlocks.shape[3]).toBe(c.number('n_selected'));
  const got: Record<string, ArrayLike<number>> = {
    k_cmp: await s.kCmp.data(),
    v_cmp: await s.vCmp.data(),
    block_scores: await s.blockScores.data(),
    selected_blocks: blockMask(await s.selectedBlocks.dataInt(), c.number('n_selected'), nSlc),
    o_cmp: await s.oCmp.data(),
    o_slc: await s.oSlc.data(),
    o_win: await s.oWin.data(),
    gates: await s.gates.data(),
    out: await out.data(),
  };
  for (const key of Object.keys(c.manifest.expected)) expectGolden(c, key, got[key] ?? [], c.tensor(key).data);
}

function newCache(c: GoldenCase, l: ReturnType<typeof loadNSACase>): NSACache {
  return new NSACache(l.q.backend, {
    batchSize: c.number('B'),
    kvHeads: c.number('n_kv_heads'),
    keyDim: c.number('head_dim'),
    valueDim: c.number('v_head_dim'),
    blockLength: c.number('cmp_block'),
    blockStride: c.number('cmp_stride'),
    compress: l.nsa.compress,
  });
}

/** Feeds the case's tokens through a cache in calls of `nextSize()` tokens; compares out and the selection. */
async function runThroughCache(c: GoldenCase, l: ReturnType<typeof loadNSACase>, nextSize: () => number): Promise<void> {
  const T = c.number('kv_len');
  const nSlc = c.number('n_slc_blocks');
  using cache = newCache(c, l);
  for (let t0 = 0; t0 < T; ) {
    const t1 = Math.min(T, t0 + nextSize());
    const rows = (key: string): ReturnType<typeof l.upload> => {
      const a = c.tensor(key);
      return l.upload(tokenRows(a.data, a.shape, t0, t1), [a.shape[0] as number, t1 - t0, ...a.shape.slice(2)]);
    };
    const { out, stages } = await l.nsa.forward(rows('q'), rows('k'), rows('v'), rows('x'), { cache, returnStages: true });
    using _o = out;
    using s = required(stages);
    const at = `tokens ${t0}..${t1 - 1}`;
    expectGolden(c, `out (${at})`, await out.data(), tokenRows(c.tensor('out').data, c.tensor('out').shape, t0, t1));
    const selected = blockMask(await s.selectedBlocks.dataInt(), c.number('n_selected'), s.blockScores.shape[3] as number);
    const expectedSel = tokenRows(c.tensor('selected_blocks').data, c.tensor('selected_blocks').shape, t0, t1);
    // the cache holds t1 tokens: the golden mask has nSlc columns for T, ours ⌈t1/l′⌉
    expect(Array.from(selected), `${c.name} selected (${at})`).toEqual(Array.from(trimColumns(expectedSel, nSlc, s.blockScores.shape[3] as number)));
    t0 = t1;
  }
}

function trimColumns(data: Float32Array, from: number, to: number): Float32Array {
  const rows = data.length / from;
  const out = new Float32Array(rows * to);
  for (let r = 0; r < rows; r++) {
    out.set(data.subarray(r * from, r * from + to), r * to);
    for (let j = to; j < from; j++) expect(data[r * from + j]).toBe(0);
  }
  return out;
}
