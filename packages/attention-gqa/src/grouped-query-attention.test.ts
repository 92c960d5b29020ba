// GroupedQueryAttention and MultiQueryAttention on every backend: prefill against the host
// oracle, token-by-token decode and chunked prefill through a cache equal to one prefill, bad
// configs, no leaks.
import { resolveAttentionConfig } from '@attnkit/attention-mha';
import { HostCache, layerReference, randomLayerWeights } from '@attnkit/attention-mha/testing';
import { ContiguousKVCache } from '@attnkit/kvcache';
import { ConfigError, ShapeError, tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { compareArrays, describeEachBackend, SeededRandom } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { GroupedQueryAttention, type GroupedQueryAttentionConfig, MultiQueryAttention } from './grouped-query-attention.js';

const TOLERANCE = { atol: 2e-5, rtol: 2e-4 };
const { available } = await availableBackends();

const CONFIGS: { name: string; config: GroupedQueryAttentionConfig; bias?: { q: boolean; k: boolean; v: boolean } }[] = [
  { name: 'groups of 2, halfsplit rope θ=1e6, q/k/v biases (Qwen2-like)', config: { dim: 32, nHeads: 4, nKvHeads: 2, rope: { layout: 'halfsplit', theta: 1e6 } }, bias: { q: true, k: true, v: true } },
  { name: 'groups of 3, D ≠ Dv, interleaved partial rope', config: { dim: 18, nHeads: 6, nKvHeads: 2, headDim: 4, vHeadDim: 7, rope: { layout: 'interleaved', width: 2 } } },
  { name: 'one kv head (MQA) with a window of 4', config: { dim: 16, nHeads: 4, nKvHeads: 1, window: 4, rope: { layout: 'halfsplit' } } },
];

describeEachBackend(available, (name) => `GroupedQueryAttention on ${name}`, (getBackend) => {
  for (const [index, { name, config, bias }] of CONFIGS.entries()) {
    it(`prefill matches the host oracle and decoding through a cache equals it: ${name}`, async () => {
      const backend = getBackend();
      const rng = new SeededRandom(300 + index);
      const before = backend.memory();
      const resolved = resolveAttentionConfig('test', config);
      const weights = randomLayerWeights(backend, resolved, rng, { naming: 'huggingface', bias });
      const { nKvHeads, ...mqaConfig } = config;
      const layer = nKvHeads === 1 ? new MultiQueryAttention(mqaConfig, weights.record) : new GroupedQueryAttention(config, weights.record);
      expect(layer.groupSize).toBe(config.nHeads / config.nKvHeads);
      const [B, N] = [2, 9];
      const xh = rng.normalArray(B * N * config.dim);
      {
        using x = tensor(backend, xh, [B, N, config.dim]);
        using y = await layer.forward(x);
        const cmp = compareArrays(await y.data(), layerReference(xh, B, N, resolved, weights.host, [0, 0]), TOLERANCE);
        expect(cmp.pass, `prefill: ${cmp.message}`).toBe(true);
      }
      {
        using cache =
          index % 2 === 1
            ? new HostCache(B, { paged: true })
            : new ContiguousKVCache(backend, { batchSize: B, kvHeads: config.nKvHeads, keyDim: resolved.headDim, valueDim: resolved.vHeadDim, step: 2 });
        const expected = layerReference(xh, B, N, resolved, weights.host, [0, 0]);
        let t = 0;
        for (const n of [3, 1, 2, 1, 1, 1]) {
          const xs = new Float32Array(B * n * config.dim);
          for (let b = 0; b < B; b++) xs.set(xh.subarray((b * N + t) * config.dim, (b * N + t + n) * config.dim), b * n * config.dim);
          using x = tensor(backend, xs, [B, n, config.dim]);
          using y = await layer.forward(x, { cache });
          const got = await y.data();
          for (let b = 0; b < B; b++) {
            const want = expected.subarray((b * N + t) * config.dim, (b * N + t + n) * config.dim);
            const cmp = compareArrays(got.subarray(b * n * config.dim, (b + 1) * n * config.dim), want, TOLERANCE);
            expect(cmp.pass, `tokens ${t}..${t + n - 1} of sequence ${b}: ${cmp.message}`).toBe(true);
          }
          t += n;
        }
      }
      weights.dispose();
      expect(backend.memory().liveTensors).toBe(before.liveTensors);
      expect(backend.memory().liveBuffers).toBe(before.liveBuffers);
    });
  }

  it('refuses head counts that do not group, a missing nKvHeads, and MQA with several kv heads', () => {
    const rng = new SeededRandom(7);
    const weights = randomLayerWeights(getBackend(), resolveAttentionConfig('t', { dim: 12, nHeads: 3, nKvHeads: 1 }), rng);
    expect(() => new GroupedQueryAttention({ dim: 12, nHeads: 3, nKvHeads: 2 }, weights.record)).toThrow(/nHeads \(3\) to be a multiple of nKvHeads, got 2/);
    // @ts-expect-error: nKvHeads is required
    expect(() => new GroupedQueryAttention({ dim: 12, nHeads: 3 }, weights.record)).toThrow(ConfigError);
    // @ts-expect-error: MQA has one kv head
    expect(() => new MultiQueryAttention({ dim: 12, nHeads: 3, nKvHeads: 3 }, weights.record)).toThrow(/one key\/value head/);
    expect(() => new GroupedQueryAttention({ dim: 12, nHeads: 3, nKvHeads: 3 }, weights.record)).toThrow(ShapeError); // k_proj is [4, 12], not [12, 12]
    const mqa = new MultiQueryAttention({ dim: 12, nHeads: 3 }, weights.record);
    expect(mqa.config.nKvHeads).toBe(1);
    weights.dispose();
  });
});
