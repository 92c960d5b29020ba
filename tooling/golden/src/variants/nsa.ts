import { NativeSparseAttention, type CompressorMLP, type NSAResult, type NSAWeights } from '@attnkit/attention-nsa';
import { NSACache } from '@attnkit/kvcache';
import { slice, tensor, type Backend, type Tensor } from '@attnkit/tensor-core';
import type { GoldenCase } from '@attnkit/testkit';
import type { VariantAdapter } from '../adapter.js';

/**
 * nsa_*: the whole NSA forward with every stage returned and compared. Prefill cases run on the
 * full history; the decode case runs through an NSACache: the first T − 1 tokens are appended
 * (compressed by the layer's φ as blocks complete), then the decode step appends the last one.
 * `selected_blocks` is the 0/1 mask over selection blocks that the selected indices describe.
 */
export const nsaAdapter: VariantAdapter = {
  implementedBy: '@attnkit/attention-nsa',
  async run(c: GoldenCase, backend) {
    const owned: Tensor[] = [];
    const load = (key: string): Tensor => {
      const a = c.tensor(key);
      const t = tensor(backend, a.data, a.shape);
      owned.push(t);
      return t;
    };
    const optional = (key: string): Tensor | null => (c.has(key) ? load(key) : null);
    const mlp = (prefix: string): CompressorMLP => ({ w1: load(`${prefix}_w1`), b1: optional(`${prefix}_b1`), w2: load(`${prefix}_w2`), b2: optional(`${prefix}_b2`) });
    try {
      const phi = c.string('phi');
      if (phi !== 'mean' && phi !== 'mlp') throw new Error(`golden case ${c.name}: unknown phi ${phi}`);
      const weights: NSAWeights = {
        gateWeight: load('w_gate'),
        gateBias: load('b_gate'),
        keyPE: optional('pe_k'),
        valuePE: optional('pe_v'),
        ...(phi === 'mlp' ? { keyMLP: mlp('cmp_k'), valueMLP: mlp('cmp_v') } : {}),
      };
      const nsa = new NativeSparseAttention(
        {
          nHeads: c.number('n_heads'),
          nKvHeads: c.number('n_kv_heads'),
          headDim: c.number('head_dim'),
          vHeadDim: c.number('v_head_dim'),
          gateDim: c.number('x_dim'),
          cmpBlock: c.number('cmp_block'),
          cmpStride: c.number('cmp_stride'),
          slcBlock: c.number('slc_block'),
          nSelected: c.number('n_selected'),
          nInit: c.number('n_init'),
          nLocal: c.number('n_local'),
          window: c.number('window'),
          phi,
          scale: c.number('scale'),
        },
        weights,
      );
      const decode = Array.isArray(c.manifest.config.q_positions);
      const { out, stages } = decode ? await decodeThroughCache(c, nsa, load, backend) : await nsa.forward(load('q'), load('k'), load('v'), load('x'), { returnStages: true });
      using _out = out;
      if (!stages) throw new Error('nsa.forward returned no stages');
      using s = stages;
      const nSlc = c.number('n_slc_blocks');
      return {
        out: await out.data(),
        gates: await s.gates.data(),
        o_cmp: await s.oCmp.data(),
        o_slc: await s.oSlc.data(),
        o_win: await s.oWin.data(),
        k_cmp: await s.kCmp.data(),
        v_cmp: await s.vCmp.data(),
        block_scores: await s.blockScores.data(),
        selected_blocks: blockMask(await s.selectedBlocks.dataInt(), s.selectedBlocks.shape[3] ?? 0, nSlc),
      };
    } finally {
      for (const t of owned) t.dispose();
    }
  },
};

async function decodeThroughCache(c: GoldenCase, nsa: NativeSparseAttention, load: (key: string) => Tensor, backend: Backend): Promise<NSAResult> {
  const [B, T, Hkv, D] = c.tensor('k').shape as [number, number, number, number];
  const Dv = c.tensor('v').shape[3] as number;
  using cache = new NSACache(backend, {
    batchSize: B,
    kvHeads: Hkv,
    keyDim: D,
    valueDim: Dv,
    blockLength: nsa.config.cmpBlock,
    blockStride: nsa.config.cmpStride,
    compress: nsa.compress,
  });
  const k = load('k');
  const v = load('v');
  using kPast = await slice(k, [0, 0, 0, 0], [B, T - 1, Hkv, D]);
  using vPast = await slice(v, [0, 0, 0, 0], [B, T - 1, Hkv, Dv]);
  await cache.updateAndFetch(kPast, vPast);
  using kNew = await slice(k, [0, T - 1, 0, 0], [B, 1, Hkv, D]);
  using vNew = await slice(v, [0, T - 1, 0, 0], [B, 1, Hkv, Dv]);
  return await nsa.forward(load('q'), kNew, vNew, load('x'), { cache, returnStages: true });
}

/** i32 [..., n] block indices (−1 = none) → f32 [..., nSlc] 0/1 mask. */
function blockMask(indices: Int32Array, n: number, nSlc: number): Float32Array {
  const rows = n === 0 ? 0 : indices.length / n;
  const mask = new Float32Array(rows * nSlc);
  for (let r = 0; r < rows; r++) {
    for (let t = 0; t < n; t++) {
      const j = indices[r * n + t] as number;
      if (j >= 0) mask[r * nSlc + j] = 1;
    }
  }
  return mask;
}
