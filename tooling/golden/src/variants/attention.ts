import { attention } from '@attnkit/attention-mha';
import { concat, tensor, type Backend, type Tensor } from '@attnkit/tensor-core';
import type { GoldenCase } from '@attnkit/testkit';
import type { VariantAdapter } from '../adapter.js';

function load(backend: Backend, c: GoldenCase, key: string): Tensor {
  const a = c.tensor(key);
  return tensor(backend, a.data, a.shape);
}

/**
 * mha_* / gqa_* / mqa_*: prefill, noncausal, decode and chunk cases through the attention core.
 * Decode and chunk cases append the new rows to the cache and attend over the result.
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
      using kc = load(backend, c, 'k_cache');
      using vc = load(backend, c, 'v_cache');
      using kn = load(backend, c, 'k_new');
      using vn = load(backend, c, 'v_new');
      k = await concat([kc, kn], 1);
      v = await concat([vc, vn], 1);
      result.k_cache_after = await k.data();
      result.v_cache_after = await v.data();
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
