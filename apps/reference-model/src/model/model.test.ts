// The model against independently computed logits, on every backend here: the five trained
// checkpoints against the PyTorch training code's expected_logits (tooling/train), the Hugging
// Face fixtures against transformers' own. Then the cache: decode steps and chunked prefill
// must give the logits a single prefill gives at the same positions.

import { type MemoryReport, type Tensor, slice } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { describeEachBackend } from '@attnkit/testkit';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHECKPOINTS_DIR, loadModelFromFolder } from '../node.js';
import { type ExpectedLogits, maxAbsError, readExpectedLogits } from '../testing/expected.js';
import type { Model } from './model.js';

const { available } = await availableBackends();
/**
 * The full trained-checkpoint suite (160-token prefills, decode) costs seconds per test on the
 * gpu.js backends of this 2-core machine: it runs on cpu and one gpu.js backend (WebGPU when it
 * starts, the real GPU path); ATTNKIT_MODEL_ALL_BACKENDS=1 runs it on every backend. The HF
 * fixtures are tiny and run everywhere.
 */
const GPU_PICK = ['gpujs-webgpu', 'gpujs-webasm', 'gpujs-cpu'].find((n) => available.some((b) => b.name === n));
const heavy = (name: string): boolean => process.env.ATTNKIT_MODEL_ALL_BACKENDS === '1' || name === 'cpu' || name === GPU_PICK;
const FIXTURES = join(import.meta.dirname, '../../fixtures/hf');
const TRAINED = ['fortunes-mha', 'fortunes-gqa', 'fortunes-mla', 'fortunes-dsa', 'fortunes-nsa'].map((name) => ({ name, dir: join(CHECKPOINTS_DIR, name) }));
const HF = ['llama-gqa', 'deepseek-v3-no-qlora', 'deepseek-v3-qlora-yarn', 'deepseek-v32-dsa'].map((name) => ({ name, dir: join(FIXTURES, name) }));
/** Decode and prefill compute the same float32 function in another order. */
const SAME_FUNCTION = 1e-4;

async function rows(t: Tensor): Promise<Float32Array> {
  using owned = t;
  return await owned.data();
}

/** Logits of every prompt position from one prefill. */
async function prefill(model: Model, ids: readonly number[]): Promise<Float32Array> {
  using cache = model.createCache();
  return await rows(await model.forward([ids], cache));
}

/** Logits of every position, fed in chunks of the given sizes (a size of 1 is a decode step). */
async function chunked(model: Model, ids: readonly number[], chunks: readonly number[]): Promise<Float32Array> {
  using cache = model.createCache();
  const out = new Float32Array(ids.length * model.config.vocabSize);
  let at = 0;
  for (const n of chunks) {
    const logits = await rows(await model.forward([ids.slice(at, at + n)], cache));
    out.set(logits, at * model.config.vocabSize);
    at += n;
  }
  expect(cache.lengths).toEqual([ids.length]);
  return out;
}

function expectClose(actual: Float32Array, expected: Float32Array, tolerance: number, what: string): void {
  const { error, at } = maxAbsError(actual, expected);
  expect(error, `${what}: max abs error ${error} at ${at} (tolerance ${tolerance})`).toBeLessThanOrEqual(tolerance);
}

describeEachBackend(available, (name) => `reference model on '${name}'`, (getBackend, backendName) => {
  describe.skipIf(!heavy(backendName)).each(TRAINED)('trained checkpoint $name', ({ dir }) => {
    let model: Model;
    let expected: ExpectedLogits;
    let baseline: MemoryReport;
    beforeAll(async () => {
      const backend = getBackend();
      baseline = backend.memory();
      model = await loadModelFromFolder(backend, dir);
      expected = await readExpectedLogits(dir);
    });
    afterAll(() => {
      model.dispose();
      const after = getBackend().memory();
      expect([after.liveBuffers, after.liveTensors]).toEqual([baseline.liveBuffers, baseline.liveTensors]);
    });

    it("matches the training code's logits on the fixed prompt", async () => {
      expect(expected.inputIds).toHaveLength(160);
      expectClose(await prefill(model, expected.inputIds), expected.logits, expected.tolerance, 'prefill vs PyTorch');
    });

    it('gives the prefill logits in decode steps and chunked prefill (cache correctness past every sparse threshold)', async () => {
      // 152 tokens at once, then 8 decode steps: DSA selects 64 of up to 160 keys, NSA's window
      // (64) and top-4 of 5 selection blocks (32) are both active in the decoded positions.
      const ids = expected.inputIds;
      const full = await prefill(model, ids);
      const decoded = await chunked(model, ids, [152, ...new Array<number>(8).fill(1)]);
      expectClose(decoded, full, SAME_FUNCTION, 'prefill + decode vs prefill');
      expectClose(decoded, expected.logits, expected.tolerance, 'prefill + decode vs PyTorch');
      if (backendName === 'cpu') {
        const pieces = await chunked(model, ids, [17, 40, 1, 63, 39]);
        expectClose(pieces, full, SAME_FUNCTION, 'chunked prefill vs prefill');
      }
    });
  });

  describe.each(HF)('Hugging Face fixture $name', ({ dir }) => {
    it("matches transformers' logits, in one prefill and token by token", async () => {
      const backend = getBackend();
      const baseline = backend.memory();
      const expected = await readExpectedLogits(dir);
      {
        using model = await loadModelFromFolder(backend, dir);
        expectClose(await prefill(model, expected.inputIds), expected.logits, expected.tolerance, 'prefill vs transformers');
        // Token by token from position 0: every decode path (DSA becomes sparse at position 8).
        if (heavy(backendName)) {
          const steps = await chunked(model, expected.inputIds, new Array<number>(expected.inputIds.length).fill(1));
          expectClose(steps, expected.logits, expected.tolerance, 'decode steps vs transformers');
        }
      }
      const after = backend.memory();
      expect([after.liveBuffers, after.liveTensors]).toEqual([baseline.liveBuffers, baseline.liveTensors]);
    });
  });

  it('returns only the last position with lastOnly, equal to that row of the full logits', async () => {
    using model = await loadModelFromFolder(getBackend(), join(FIXTURES, 'llama-gqa'));
    const ids = [84, 104, 101, 32, 113];
    const full = await prefill(model, ids);
    using cache = model.createCache();
    using last = await model.forward([ids], cache, { lastOnly: true });
    expect(last.shape).toEqual([1, 1, model.config.vocabSize]);
    const V = model.config.vocabSize;
    // One row through the LM head instead of five: the SIMD GEMM blocks rows differently, so
    // the same float32 function in another summation order.
    expectClose(await last.data(), full.subarray(4 * V, 5 * V), SAME_FUNCTION, 'lastOnly row');
    using sliced = await slice(last, [0, 0, 0], [1, 1, 4]);
    expect(sliced.shape).toEqual([1, 1, 4]);
  });
});
