import { attention } from '@attnkit/attention-mha';
import { ContiguousKVCache } from '@attnkit/kvcache';
import { tensor, type Backend, type Tensor } from '@attnkit/tensor-core';
import type { GoldenCase } from '@attnkit/testkit';
import type { VariantAdapter } from '../adapter.js';

function load(backend: Backend, c: GoldenCase, key: string): Tensor {
  const a = c.tensor(key);
  return tensor(backend, a.data, a.shape);
}

/**
 * mha_* / gqa_* / mqa_*: prefill, noncausal, decode and chunk cases through the attention core.
 * Decode and chunk cases run through a ContiguousKVCache: the cache before the step and the new
 * rows are appended, attention reads the cache's view, k/v_cache_after are read from the cache.
 */
export const attentionAdapter: VariantAdapter = {
  implementedBy: '@attnkit/attention-mha',
  async run(c: GoldenCase, backend) {
    const kind = c.string('kind');
    const scale = c.number('scale');
    using q = load(backend, c, 'q');
    const result: Record<string, Float32Array> = {};
    let k: Tensor;
    let v: Tensor;
    if (kind === 'decode' || kind === 'chunk') {
      // The cache before the step is one append to a ContiguousKVCache, the new rows a second;
      // attention reads the cache's view, and the caches after the step are read back from it.
      using kc = load(backend, c, 'k_cache');
      using vc = load(backend, c, 'v_cache');
      using kn = load(backend, c, 'k_new');
      using vn = load(backend, c, 'v_new');
      const [B, , Hkv, D] = kc.shape as readonly [number, number, number, number];
      using cache = new ContiguousKVCache(backend, { batchSize: B, kvHeads: Hkv, keyDim: D, valueDim: vc.shape[3] });
      await cache.updateAndFetch(kc, vc);
      const view = await cache.updateAndFetch(kn, vn);
      const { out, lse } = await attention(q, view.keys, view.values, { scale, kvLengths: view.lengths, mask: c.boolean('causal') ? 'causal' : 'none', returnLse: true });
      result.out = await out.data();
      if (lse) result.lse = await lse.data();
      out.dispose();
      lse?.dispose();
      using kAfter = await cache.readKeys();
      using vAfter = await cache.readValues();
      result.k_cache_after = await kAfter.data();
      if (vAfter) result.v_cache_after = await vAfter.data();
      return result;
    } else {
      k = load(backend, c, 'k');
      v = load(backend, c, 'v');
    }
    try {
      const { out, lse } = await attention(q, k, v, { scale, mask: c.boolean('causal') ? 'causal' : 'none', returnLse: true });
      result.out = await out.data();
      if (lse) result.lse = await lse.data();
      out.dispose();
      lse?.dispose();
    } finally {
      k.dispose();
      v.dispose();
    }
    return result;
  },
};
