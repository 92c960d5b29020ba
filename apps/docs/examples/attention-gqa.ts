/* eslint-disable no-console -- an example prints what it computes */
// #region example
import { GroupedQueryAttention, MultiQueryAttention } from '@attnkit/attention-gqa';
import { ContiguousKVCache } from '@attnkit/kvcache';
import { createBackend, slice, tensor } from '@attnkit/tensor-core';

const { backend } = await createBackend();
const values = (n: number, phase: number): Float32Array => Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin(0.37 * i + phase));
const w = (rows: number, cols: number, phase: number) => tensor(backend, values(rows * cols, phase), [rows, cols]);

// A Llama-shaped layer, scaled down: 8 query heads share 2 kv heads of 16 (G = 4), half-split
// RoPE with Llama 3's θ = 500 000. Weights under Hugging Face's names, after a layer prefix.
const [dim, nHeads, nKvHeads, headDim] = [128, 8, 2, 16];
const prefix = 'model.layers.0.self_attn.';
const gqa = new GroupedQueryAttention(
  { dim, nHeads, nKvHeads, rope: { layout: 'halfsplit', theta: 500_000 } },
  {
    [`${prefix}q_proj.weight`]: w(nHeads * headDim, dim, 0),
    [`${prefix}k_proj.weight`]: w(nKvHeads * headDim, dim, 1),
    [`${prefix}v_proj.weight`]: w(nKvHeads * headDim, dim, 2),
    [`${prefix}o_proj.weight`]: w(dim, nHeads * headDim, 3),
  },
  { prefix },
);

// The cache holds Hkv = 2 heads, not 8: Hkv·(D + Dv) = 64 values per token, a quarter of MHA's.
using cache = new ContiguousKVCache(backend, { batchSize: 1, kvHeads: nKvHeads, keyDim: headDim });
using x = tensor(backend, values(9 * dim, 4), [1, 9, dim]); // [B, S, dim]
using prompt = await slice(x, [0, 0, 0], [1, 8, dim]);
using token = await slice(x, [0, 8, 0], [1, 1, dim]);
using yPrompt = await gqa.forward(prompt, { cache }); // prefill [1, 8, 128]
using yToken = await gqa.forward(token, { cache }); // one decode step, bottom-right causal

using full = await gqa.forward(x); // the same 9 tokens in one causal prefill
const expected = (await full.data()).subarray(8 * dim);
console.log('group size:', gqa.groupSize, 'prefill:', yPrompt.shape, 'cached:', cache.lengths); // 4 [1,8,128] [9]
console.log('decode = prefill:', (await yToken.data()).every((v, i) => Math.abs(v - (expected[i] as number)) < 1e-5));

// MQA: one kv head for all query heads.
const mqa = new MultiQueryAttention(
  { dim, nHeads, rope: { layout: 'halfsplit' } },
  { wq: w(nHeads * headDim, dim, 5), wk: w(headDim, dim, 6), wv: w(headDim, dim, 7), wo: w(dim, nHeads * headDim, 8) },
);
using yMqa = await mqa.forward(prompt);
console.log('MQA:', yMqa.shape, 'group size', mqa.groupSize); // [1,8,128] 8
// #endregion example
await backend.dispose();
