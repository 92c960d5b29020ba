/* eslint-disable no-console -- an example prints what it computes */
// #region example
import { DEEPSEEK_V2_LITE_MLA, DEEPSEEK_V3_MLA, MLA, mlaCacheElementsPerToken } from '@attnkit/attention-mla';
import { MLALatentCache } from '@attnkit/kvcache';
import { type Tensor, createBackend, slice, tensor } from '@attnkit/tensor-core';

const { backend } = await createBackend();
const values = (n: number, phase: number): Float32Array => Float32Array.from({ length: n }, (_, i) => 0.25 * Math.sin(0.61 * i + phase));
const weight = (shape: number[], phase: number): Tensor => tensor(backend, values(shape.reduce((a, b) => a * b), phase), shape);

// DeepSeek-V2-Lite's MLA (no query compression, qLoraRank 0), every width scaled down. Real
// weights come from a checkpoint under DeepSeek's names (as here) or Hugging Face's.
const config = { ...DEEPSEEK_V2_LITE_MLA, dim: 64, nHeads: 4, kvLoraRank: 32, qkNopeHeadDim: 16, qkRopeHeadDim: 8, vHeadDim: 16 };
const { dim, nHeads: H, kvLoraRank: C, qkNopeHeadDim: dn, qkRopeHeadDim: dr, vHeadDim: dv } = config;
using mla = await MLA.fromRecord(
  backend,
  config,
  {
    wq: weight([H * (dn + dr), dim], 0), // [H·(dn + dr), dim]
    wkv_a: weight([C + dr, dim], 1), // the latent and the shared rope key in one projection
    kv_norm: tensor(backend, new Float32Array(C).fill(1), [C]),
    wkv_b: weight([H * (dn + dv), C], 2), // per head [W_UK; W_UV]
    wo: weight([dim, H * dv], 3),
  },
  { ownsWeights: true },
);

// The cache keeps one [c ‖ k_pe] row per token: C + dr = 40 values, whatever the head count.
using cache = new MLALatentCache(backend, { batchSize: 1, kvLoraRank: C, ropeDim: dr });
using x = tensor(backend, values(11 * dim, 4), [1, 11, dim]); // [B, S, dim]
using prompt = await slice(x, [0, 0, 0], [1, 10, dim]);
using token = await slice(x, [0, 10, 0], [1, 1, dim]);
using y = await mla.forward(prompt, { cache }); // prefill: the order MLA's cost rule picks
using step = await mla.forward(token, { cache }); // decode at position 10: absorbed, in the latent space
console.log('cached:', cache.lengths, 'prefill order:', mla.chooseOrder(10, 10), y.shape); // [11] naive [1,10,64]

// The two evaluation orders are the same function.
using naive = await mla.forward(x, { order: 'naive' });
using absorbed = await mla.forward(x, { order: 'absorbed' });
const [a, b, s] = await Promise.all([naive.data(), absorbed.data(), step.data()]);
console.log('naive = absorbed:', a.every((v, i) => Math.abs(v - (b[i] as number)) < 1e-5));
console.log('decode = prefill:', s.every((v, i) => Math.abs(v - (a[10 * dim + i] as number)) < 1e-5));
const v3 = mlaCacheElementsPerToken(DEEPSEEK_V3_MLA);
console.log(`DeepSeek-V3 caches ${v3.latent} values per token per layer, not ${v3.expanded}`); // 576, not 40960
// #endregion example
await backend.dispose();
