import { MLA, type MLAOrder, type MLAProjection, type ResolvedMLAConfig, resolveMLAConfig } from '@attnkit/attention-mla';
import type { CacheView } from '@attnkit/kvcache';
import { type Backend, type Tensor, concat, reshape, slice, tensor } from '@attnkit/tensor-core';
import { type GoldenCase, compareArrays } from '@attnkit/testkit';
import type { VariantAdapter } from '../adapter.js';

const ORDERS: readonly MLAOrder[] = ['absorbed', 'naive'];

/**
 * mla_*: the whole layer, x → y, from the manifest's DeepSeek-named weights. Every case runs in
 * both evaluation orders; the absorbed results are returned for the runner to compare, and the
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
    const [reported, ...others] = await Promise.all(ORDERS.map((order) => runOrder(layer, c, backend, order)));
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

/** Prefill from position 0, then the step (if any) after it, through project → attend. */
async function runOrder(layer: MLA, c: GoldenCase, backend: Backend, order: MLAOrder): Promise<Record<string, Float32Array>> {
  const { kvLoraRank: C, qkRopeHeadDim: dr } = layer.config;
  const result: Record<string, Float32Array> = {};
  const prefill = c.tensor('x_prefill');
  const [B = 0, S0 = 0] = prefill.shape;
  using x0 = tensor(backend, prefill.data, prefill.shape);
  using p0 = await layer.project(x0, 0);
  const y0 = await attendWithRows(layer, p0, p0.kvRows, new Array<number>(B).fill(S0), order);
  result.y_prefill = y0;
  let rows: Tensor = p0.kvRows;
  let ownedRows: Tensor | null = null;
  try {
    if (c.has('x_step')) {
      const step = c.tensor('x_step');
      const S1 = step.shape[1] ?? 0;
      using x1 = tensor(backend, step.data, step.shape);
      using p1 = await layer.project(x1, S0);
      ownedRows = await concat([p0.kvRows, p1.kvRows], 1); // [B, S0+S1, 1, C+dr]
      rows = ownedRows;
      result.y_step = await attendWithRows(layer, p1, rows, new Array<number>(B).fill(S0 + S1), order);
    }
    const T = rows.shape[1] ?? 0;
    using latent = await slice(rows, [0, 0, 0, 0], [B, T, 1, C]);
    using ropeKeys = await slice(rows, [0, 0, 0, C], [B, T, 1, dr]);
    using kvCache = reshape(latent, [B, T, C]);
    using peCache = reshape(ropeKeys, [B, T, dr]);
    result.kv_cache = await kvCache.data();
    result.pe_cache = await peCache.data();
  } finally {
    ownedRows?.dispose();
  }
  return result;
}

async function attendWithRows(layer: MLA, p: MLAProjection, rows: Tensor, lengths: number[], order: MLAOrder): Promise<Float32Array> {
  const view: CacheView = { keys: rows, values: null, valueDim: layer.config.kvLoraRank, rowMap: null, lengths };
  const { y, order: ran } = await layer.attend(p, view, { order });
  using out = y;
  if (ran !== order) throw new Error(`asked for the ${order} order, ${ran} ran`);
  return out.data();
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
