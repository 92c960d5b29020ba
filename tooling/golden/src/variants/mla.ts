import { MLA, type MLAOrder, type ResolvedMLAConfig, resolveMLAConfig } from '@attnkit/attention-mla';
import { MLALatentCache } from '@attnkit/kvcache';
import { type Backend, type Tensor, tensor } from '@attnkit/tensor-core';
import { type GoldenArray, type GoldenCase, compareArrays } from '@attnkit/testkit';
import type { VariantAdapter } from '../adapter.js';

const ORDERS: readonly MLAOrder[] = ['absorbed', 'naive'];

/**
 * mla_*: the whole layer, x → y, from the manifest's DeepSeek-named weights, over an
 * MLALatentCache (whose latent and rope parts are the expected kv_cache / pe_cache). Every case
 * runs in both evaluation orders; the absorbed results are returned for the runner to compare, and the
 * naive ones are checked here against the same expected tensors and tolerance, so the case
 * fails if either order misses.
 */
export const mlaAdapter: VariantAdapter = {
  implementedBy: '@attnkit/attention-mla',
  async run(c: GoldenCase, backend) {
    const config = goldenConfig(c);
    const record: Record<string, Tensor> = {};
    for (const key of Object.keys(c.manifest.weights)) {
      const w = c.tensor(key);
      record[key] = tensor(backend, w.data, w.shape);
    }
    using layer = await MLA.fromRecord(backend, config, record, { ownsWeights: true });
    const results: Record<string, Float32Array>[] = [];
    for (const order of ORDERS) results.push(await runOrder(layer, c, backend, order));
    const [reported, ...others] = results;
    for (const [i, result] of others.entries()) {
      for (const key of Object.keys(c.manifest.expected)) {
        const got = result[key];
        const cmp = got ? compareArrays(got, c.tensor(key).data, c.manifest.tolerance) : null;
        if (!cmp?.pass) throw new Error(`${ORDERS[i + 1]} order, ${key}: ${cmp ? cmp.message : 'not produced'}`);
      }
    }
    if (!reported) throw new Error('no order ran');
    return reported;
  },
};

/** Prefill from position 0, then the step (if any) after it, through an MLALatentCache. */
async function runOrder(layer: MLA, c: GoldenCase, backend: Backend, order: MLAOrder): Promise<Record<string, Float32Array>> {
  const result: Record<string, Float32Array> = {};
  const prefill = c.tensor('x_prefill');
  using cache = new MLALatentCache(backend, { batchSize: prefill.shape[0] ?? 0, kvLoraRank: layer.config.kvLoraRank, ropeDim: layer.config.qkRopeHeadDim });
  result.y_prefill = await step(layer, backend, prefill, cache, order);
  if (c.has('x_step')) result.y_step = await step(layer, backend, c.tensor('x_step'), cache, order);
  using latent = await cache.readLatent(); // [B, T, C]
  using ropeKeys = await cache.readRope(); // [B, T, dr]
  result.kv_cache = await latent.data();
  result.pe_cache = await ropeKeys.data();
  return result;
}

async function step(layer: MLA, backend: Backend, x: GoldenArray, cache: MLALatentCache, order: MLAOrder): Promise<Float32Array> {
  using input = tensor(backend, x.data, x.shape);
  using y = await layer.forward(input, { cache, order });
  return await y.data();
}

/** The manifest's config; YaRN cases get DeepSeek's rule satisfied (maxSeqLen = factor × L0). */
function goldenConfig(c: GoldenCase): ResolvedMLAConfig {
  const yarn = c.manifest.config.yarn;
  const yarnInput = isRecord(yarn)
    ? {
        factor: num(yarn, 'factor'),
        originalSeqLen: num(yarn, 'original_seq_len'),
        betaFast: num(yarn, 'beta_fast'),
        betaSlow: num(yarn, 'beta_slow'),
        mscale: num(yarn, 'mscale'),
      }
    : null;
  const config = resolveMLAConfig({
    dim: c.number('dim'),
    nHeads: c.number('n_heads'),
    qLoraRank: c.number('q_lora_rank'),
    kvLoraRank: c.number('kv_lora_rank'),
    qkNopeHeadDim: c.number('qk_nope_head_dim'),
    qkRopeHeadDim: c.number('qk_rope_head_dim'),
    vHeadDim: c.number('v_head_dim'),
    ropeTheta: c.number('rope_theta'),
    normEps: c.number('norm_eps'),
    // Without YaRN, keep maxSeqLen at the (default) original length so DeepSeek's rule leaves it off.
    ...(yarnInput ? { yarn: yarnInput, maxSeqLen: yarnInput.factor * yarnInput.originalSeqLen } : { maxSeqLen: 4096, yarn: { originalSeqLen: 4096 } }),
  });
  const expectedScale = c.number('softmax_scale');
  if (Math.abs(config.softmaxScale - expectedScale) > 1e-12 * expectedScale) {
    throw new Error(`softmax scale ${config.softmaxScale} from the config, the manifest says ${expectedScale}`);
  }
  return config;
}

function isRecord(v: unknown): v is Readonly<Record<string, unknown>> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(o: Readonly<Record<string, unknown>>, key: string): number {
  const v = o[key];
  if (typeof v !== 'number') throw new Error(`yarn.${key} is ${JSON.stringify(v)}, expected a number`);
  return v;
}
