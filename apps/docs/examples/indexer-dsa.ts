/* eslint-disable no-console -- an example prints what it computes */
// #region example
import { DEEPSEEK_V32_DSA, DSA, dsaCacheElementsPerToken, selectedKeys } from '@attnkit/indexer-dsa';
import { type Tensor, createBackend, tensor } from '@attnkit/tensor-core';

const { backend } = await createBackend();
const values = (n: number, phase: number): Float32Array => Float32Array.from({ length: n }, (_, i) => 0.25 * Math.sin(0.43 * i + phase));
const weight = (shape: number[], phase: number): Tensor => tensor(backend, values(shape.reduce((a, b) => a * b), phase), shape);
const ones = (n: number): Tensor => tensor(backend, new Float32Array(n).fill(1), [n]);

// DeepSeek-V3.2's DSA with every width scaled down: MLA (with query compression, which the
// indexer reads) plus a 4-head lightning indexer of width 32 that keeps 8 tokens per query.
const config = {
  ...DEEPSEEK_V32_DSA,
  dim: 64, nHeads: 4, qLoraRank: 32, kvLoraRank: 32, qkNopeHeadDim: 16, qkRopeHeadDim: 8, vHeadDim: 16,
  indexNHeads: 4, indexHeadDim: 32, indexTopk: 8, maxSeqLen: 4096,
};
const { dim, nHeads: H, qLoraRank: Cq, kvLoraRank: C, qkNopeHeadDim: dn, qkRopeHeadDim: dr, vHeadDim: dv, indexNHeads: HI, indexHeadDim: DI } = config;
// One layer's weights under DeepSeek's names (Hugging Face's work too), the indexer's under `indexer.`.
using dsa = await DSA.fromRecord(
  backend,
  config,
  {
    wq_a: weight([Cq, dim], 0), q_norm: ones(Cq), wq_b: weight([H * (dn + dr), Cq], 1),
    wkv_a: weight([C + dr, dim], 2), kv_norm: ones(C), wkv_b: weight([H * (dn + dv), C], 3), wo: weight([dim, H * dv], 4),
    'indexer.wq_b': weight([HI * DI, Cq], 5), 'indexer.wk': weight([DI, dim], 6),
    'indexer.k_norm.weight': ones(DI), 'indexer.k_norm.bias': weight([DI], 7), 'indexer.weights_proj': weight([HI, dim], 8),
  },
  { ownsWeights: true },
);

// A 20-token prompt, then one decode step with its selection exposed.
using cache = dsa.createCache({ batchSize: 1 }); // MLA's latent rows (40 values) + the indexer's keys (32)
using prompt = weight([1, 20, dim], 9); // [B, S, dim]
using y = await dsa.forward(prompt, { cache });
using token = weight([1, 1, dim], 10);
using step = await dsa.forwardWithIndex(token, { cache, keepScores: true }); // the query at position 20
const [picked = []] = await selectedKeys(step.index);
console.log('outputs:', y.shape, step.y.shape, 'cached:', cache.lengths, 'sparse:', step.sparse); // [1,20,64] [1,1,64] [21] true
console.log('position 20 attends to', picked.length, 'of 21 tokens'); // min(index_topk, p + 1) = 8
console.log('index scores:', step.index.scores?.shape); // [1, 1, 21]: I[20, t] for every cached token

// DeepSeek-V3.2: 576 latent + 128 indexer values per token per layer.
console.log(dsaCacheElementsPerToken(DEEPSEEK_V32_DSA)); // { latent: 576, indexKey: 128, total: 704 }
// #endregion example
await backend.dispose();
