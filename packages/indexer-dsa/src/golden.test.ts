// The golden dsa_* cases seen from the indexer: the exact path reproduces the golden selections
// through every implementation; the deployed fp8 path and the unfixed (interleaved) RoPE of the
// 2025-10 snapshot are measured against them — the figures README.md quotes.
import type { Backend } from '@attnkit/tensor-core';
import { tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { describeEachBackend, type GoldenCase, loadGoldenCases } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import { type ResolvedDSAConfig, resolveDSAConfig } from './config.js';
import { DSA } from './dsa.js';
import { selectionMask } from './inspect.js';
import type { IndexerImplementation } from './kernels/problem.js';
import { type HostDSAWeights, referenceDSA } from './testing/fixtures/reference-dsa.js';

const CASES = loadGoldenCases().filter((c) => c.variant === 'dsa');
const { available } = await availableBackends();

/**
 * Picks that differ from the golden (exact) selection, per case: [prefill, step]. Of 292 picks
 * in dsa_prefill_topk_lt (40 queries, top-8) and 910 + 20 in dsa_decode_topk_lt (2 × 50 queries,
 * top-10, then 2 decode steps); the *_gt cases keep every visible token, so nothing can move.
 */
const FP8_DIFFERING_PICKS: Readonly<Record<string, readonly [number, number]>> = {
  dsa_prefill_topk_lt: [4, 0],
  dsa_prefill_topk_gt: [0, 0],
  dsa_decode_topk_lt: [11, 0],
  dsa_decode_topk_gt: [0, 0],
};

/** The same with the indexer's RoPE interleaved (the bug DeepSeek fixed in Nov 2025), prefill and step together. */
const INTERLEAVED_DIFFERING_PICKS: Readonly<Record<string, number>> = {
  dsa_prefill_topk_lt: 82,
  dsa_prefill_topk_gt: 0,
  dsa_decode_topk_lt: 168,
  dsa_decode_topk_gt: 0,
};

const GOLDEN_NAMES: Readonly<Record<string, string>> = {
  idx_wq_b: 'indexer.wq_b',
  idx_wk: 'indexer.wk',
  idx_k_norm_w: 'indexer.k_norm.weight',
  idx_k_norm_b: 'indexer.k_norm.bias',
  idx_wproj: 'indexer.weights_proj',
};

function configOf(c: GoldenCase, indexPrecision: 'exact' | 'fp8'): ResolvedDSAConfig {
  return resolveDSAConfig({
    dim: c.number('dim'),
    nHeads: c.number('n_heads'),
    qLoraRank: c.number('q_lora_rank'),
    kvLoraRank: c.number('kv_lora_rank'),
    qkNopeHeadDim: c.number('qk_nope_head_dim'),
    qkRopeHeadDim: c.number('qk_rope_head_dim'),
    vHeadDim: c.number('v_head_dim'),
    indexNHeads: c.number('index_n_heads'),
    indexHeadDim: c.number('index_head_dim'),
    indexTopk: c.number('index_topk'),
    maxSeqLen: 4096,
    yarn: { originalSeqLen: 4096 },
    indexPrecision,
  });
}

function hostWeights(c: GoldenCase): HostDSAWeights {
  return Object.fromEntries(Object.keys(c.manifest.weights).map((key) => [GOLDEN_NAMES[key] ?? key, c.tensor(key).data]));
}

/** Prefill, then the step if the case has one: the selected masks of each call (and the indexer implementation that ran each, in `ran`). */
async function selections(backend: Backend, c: GoldenCase, config: ResolvedDSAConfig, implementation: IndexerImplementation, ran: string[] = []): Promise<Float32Array[]> {
  const record = Object.fromEntries(
    Object.keys(c.manifest.weights).map((key) => {
      const w = c.tensor(key);
      return [GOLDEN_NAMES[key] ?? key, tensor(backend, w.data, w.shape)];
    }),
  );
  using layer = await DSA.fromRecord(backend, config, record, { ownsWeights: true });
  const prefill = c.tensor('x_prefill');
  using cache = layer.createCache({ batchSize: prefill.shape[0] ?? 0 });
  const masks: Float32Array[] = [];
  for (const key of ['x_prefill', 'x_step']) {
    if (!c.has(key)) continue;
    const x = c.tensor(key);
    using input = tensor(backend, x.data, x.shape);
    using r = await layer.forwardWithIndex(input, { cache, keepScores: false, indexerImplementation: implementation });
    masks.push(await selectionMask(r.index));
    ran.push(r.index.dispatch.implementation);
  }
  return masks;
}

/** Picks in `mask` that `golden` does not have (the sets are equally large, so this is half the symmetric difference). */
function differing(mask: Float32Array, golden: Float32Array): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) if (mask[i] === 1 && golden[i] !== 1) n++;
  return n;
}

describeEachBackend(available, (name) => `golden dsa selections on ${name}`, (getBackend, name) => {
  for (const c of CASES) {
    it(`${c.name}: the exact path picks the golden sets through every implementation`, async () => {
      const config = configOf(c, 'exact');
      for (const implementation of ['auto', 'composed', 'reference'] as const) {
        const ran: string[] = [];
        const [prefill, step] = await selections(getBackend(), c, config, implementation, ran);
        // On WebGPU the decode step is the fused WebGPU kernel's (a prefill declines it).
        if (implementation === 'auto' && name === 'gpujs-webgpu' && c.has('x_step')) expect(ran[1]).toBe('fused:webgpu-indexer');
        expect(prefill, `${implementation}: prefill`).toEqual(c.tensor('selected_prefill').data);
        if (c.has('selected_step')) expect(step, `${implementation}: step`).toEqual(c.tensor('selected_step').data);
      }
    });

    it(`${c.name}: the fp8 path changes ${FP8_DIFFERING_PICKS[c.name]?.join(' + ')} picks`, async () => {
      const [prefill = new Float32Array(), step] = await selections(getBackend(), c, configOf(c, 'fp8'), 'auto');
      const got = [differing(prefill, c.tensor('selected_prefill').data), step ? differing(step, c.tensor('selected_step').data) : 0];
      expect(got).toEqual(FP8_DIFFERING_PICKS[c.name]);
    });
  }
}, { lifetime: 'test' });

describe('the Nov-2025 RoPE fix on the golden cases', () => {
  for (const c of CASES) {
    it(`${c.name}: interleaved indexer RoPE changes ${INTERLEAVED_DIFFERING_PICKS[c.name]} picks`, () => {
      const config = configOf(c, 'exact');
      const prefill = c.tensor('x_prefill');
      const step = c.has('x_step') ? c.tensor('x_step') : null;
      const [B = 0, S0 = 0, dim = 0] = prefill.shape;
      const S1 = step?.shape[1] ?? 0;
      const T = S0 + S1;
      // The whole sequence as one causal prefill: row p is the query at position p either way.
      const x = new Float32Array(B * T * dim);
      for (let b = 0; b < B; b++) {
        x.set(prefill.data.subarray(b * S0 * dim, (b + 1) * S0 * dim), b * T * dim);
        if (step) x.set(step.data.subarray(b * S1 * dim, (b + 1) * S1 * dim), (b * T + S0) * dim);
      }
      const count = (layout: 'halfsplit' | 'interleaved'): number => {
        const ref = referenceDSA(config, hostWeights(c), x, B, T, { indexRope: layout });
        let n = 0;
        for (let b = 0; b < B; b++) {
          for (let p = 0; p < T; p++) {
            const golden = p < S0 ? c.tensor('selected_prefill').data.subarray((b * S0 + p) * S0, (b * S0 + p + 1) * S0) : c.tensor('selected_step').data.subarray((b * S1 + p - S0) * T, (b * S1 + p - S0 + 1) * T);
            for (const t of ref.selected[b * T + p] ?? []) if (golden[t] !== 1) n++;
          }
        }
        return n;
      };
      expect(count('halfsplit'), 'the fixed layout reproduces the golden sets').toBe(0);
      expect(count('interleaved')).toBe(INTERLEAVED_DIFFERING_PICKS[c.name]);
    });
  }
});
