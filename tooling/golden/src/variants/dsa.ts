import type { MLAOrder } from '@attnkit/attention-mla';
import { DSA, type DSAResult, type IndexerImplementation, type ResolvedDSAConfig, resolveDSAConfig, selectionMask } from '@attnkit/indexer-dsa';
import { type Backend, type Tensor, tensor } from '@attnkit/tensor-core';
import { type GoldenArray, type GoldenCase, compareArrays } from '@attnkit/testkit';
import type { VariantAdapter } from '../adapter.js';

/** The manifest's weight keys → the record keys `DSA.fromRecord` reads (DeepSeek's names). */
const WEIGHT_NAMES: Readonly<Record<string, string>> = {
  wq_a: 'wq_a',
  q_norm: 'q_norm',
  wq_b: 'wq_b',
  wkv_a: 'wkv_a',
  kv_norm: 'kv_norm',
  wkv_b: 'wkv_b',
  wo: 'wo',
  idx_wq_b: 'indexer.wq_b',
  idx_wk: 'indexer.wk',
  idx_k_norm_w: 'indexer.k_norm.weight',
  idx_k_norm_b: 'indexer.k_norm.bias',
  idx_wproj: 'indexer.weights_proj',
};

/** Absorbed order with the backend's own indexer (reported), then the other order and the composed indexer (checked here). */
const RUNS: readonly { order: MLAOrder; indexer: IndexerImplementation }[] = [
  { order: 'absorbed', indexer: 'auto' },
  { order: 'naive', indexer: 'auto' },
  { order: 'absorbed', indexer: 'composed' },
];

/**
 * dsa_*: the whole layer, x → y, through a DSACache (MLA's latent rows and the indexer's keys):
 * outputs, both caches, the raw indexer scores (−∞ where not visible) and the selected sets as
 * 0/1 masks. The first run is returned for the runner to compare; the others are held to the
 * same expected tensors and tolerance here, so the case fails if any of them misses.
 */
export const dsaAdapter: VariantAdapter = {
  implementedBy: '@attnkit/indexer-dsa',
  async run(c: GoldenCase, backend) {
    const config = goldenConfig(c);
    const record: Record<string, Tensor> = {};
    for (const key of Object.keys(c.manifest.weights)) {
      const name = WEIGHT_NAMES[key];
      if (!name) throw new Error(`unknown weight "${key}" in the manifest`);
      const w = c.tensor(key);
      record[name] = tensor(backend, w.data, w.shape);
    }
    using layer = await DSA.fromRecord(backend, config, record, { ownsWeights: true });
    const results: Record<string, Float32Array>[] = [];
    for (const run of RUNS) results.push(await runOnce(layer, c, backend, run.order, run.indexer));
    const [reported, ...others] = results;
    for (const [i, result] of others.entries()) {
      for (const key of Object.keys(c.manifest.expected)) {
        const got = result[key];
        const cmp = got ? compareArrays(got, c.tensor(key).data, c.manifest.tolerance) : null;
        const run = RUNS[i + 1];
        if (!cmp?.pass) throw new Error(`${run?.order} order, ${run?.indexer} indexer, ${key}: ${cmp ? cmp.message : 'not produced'}`);
      }
    }
    if (!reported) throw new Error('nothing ran');
    return reported;
  },
};

/** Prefill from position 0, then the step (if any), exposing the selection of each call. */
async function runOnce(layer: DSA, c: GoldenCase, backend: Backend, order: MLAOrder, indexer: IndexerImplementation): Promise<Record<string, Float32Array>> {
  const result: Record<string, Float32Array> = {};
  const prefill = c.tensor('x_prefill');
  using cache = layer.createCache({ batchSize: prefill.shape[0] ?? 0 });
  const call = async (x: GoldenArray, suffix: 'prefill' | 'step'): Promise<void> => {
    using input = tensor(backend, x.data, x.shape);
    using r: DSAResult = await layer.forwardWithIndex(input, { cache, order, indexerImplementation: indexer });
    result[`y_${suffix}`] = await r.y.data();
    if (!r.index.scores) throw new Error('the selection kept no scores');
    result[`index_score_${suffix}`] = await r.index.scores.data();
    result[`selected_${suffix}`] = await selectionMask(r.index);
  };
  await call(prefill, 'prefill');
  if (c.has('x_step')) await call(c.tensor('x_step'), 'step');
  using latent = await cache.latent.readLatent(); // [B, T, C]
  using ropeKeys = await cache.latent.readRope(); // [B, T, dr]
  using indexKeys = await cache.indexKeys.readIndexKeys(); // [B, T, D_I]
  result.kv_cache = await latent.data();
  result.pe_cache = await ropeKeys.data();
  result.index_k_cache = await indexKeys.data();
  return result;
}

/** The manifest's config (no YaRN in these cases: maxSeqLen stays at the original length so DeepSeek's rule keeps it off). */
function goldenConfig(c: GoldenCase): ResolvedDSAConfig {
  if (c.string('index_rope_layout') !== 'halfsplit') throw new Error(`index_rope_layout ${c.string('index_rope_layout')}: only the fixed (half-split) indexer is defined`);
  if (c.manifest.config.yarn !== null) throw new Error('the dsa cases have no YaRN; this adapter would need its settings');
  const config = resolveDSAConfig({
    dim: c.number('dim'),
    nHeads: c.number('n_heads'),
    qLoraRank: c.number('q_lora_rank'),
    kvLoraRank: c.number('kv_lora_rank'),
    qkNopeHeadDim: c.number('qk_nope_head_dim'),
    qkRopeHeadDim: c.number('qk_rope_head_dim'),
    vHeadDim: c.number('v_head_dim'),
    ropeTheta: c.number('rope_theta'),
    normEps: c.number('norm_eps'),
    indexNHeads: c.number('index_n_heads'),
    indexHeadDim: c.number('index_head_dim'),
    indexTopk: c.number('index_topk'),
    maxSeqLen: 4096,
    yarn: { originalSeqLen: 4096 },
  });
  const expectedScale = c.number('softmax_scale');
  if (Math.abs(config.softmaxScale - expectedScale) > 1e-12 * expectedScale) {
    throw new Error(`softmax scale ${config.softmaxScale} from the config, the manifest says ${expectedScale}`);
  }
  return config;
}
