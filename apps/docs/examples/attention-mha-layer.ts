/* eslint-disable no-console -- an example prints what it computes */
// #region example
import { MultiHeadAttention } from '@attnkit/attention-mha';
import { ContiguousKVCache } from '@attnkit/kvcache';
import { createBackend, slice, tensor } from '@attnkit/tensor-core';

const { backend } = await createBackend();
const values = (n: number, phase: number): Float32Array => Float32Array.from({ length: n }, (_, i) => 0.3 * Math.sin(0.7 * i + phase));
const w = (rows: number, cols: number, phase: number) => tensor(backend, values(rows * cols, phase), [rows, cols]);

// A layer of width 32 with 4 heads of 8: PyTorch-layout [out, in] weights under Hugging Face's
// names (ours, wq / wk / wv / wo, work too), half-split RoPE with θ = 10 000.
const dim = 32;
const mha = new MultiHeadAttention(
  { dim, nHeads: 4, rope: { layout: 'halfsplit' } },
  { 'q_proj.weight': w(dim, dim, 0), 'k_proj.weight': w(dim, dim, 1), 'v_proj.weight': w(dim, dim, 2), 'o_proj.weight': w(dim, dim, 3) },
);

// Six tokens at once (a causal prefill from position 0) …
using x = tensor(backend, values(6 * dim, 4), [1, 6, dim]); // [B, S, dim]
using full = await mha.forward(x);

// … or a prompt of five, then one decode step against a cache: the cache appends the step's
// keys and values, and RoPE takes the step's position (5) from the tokens it already holds.
using cache = new ContiguousKVCache(backend, { batchSize: 1, kvHeads: 4, keyDim: 8 });
using prompt = await slice(x, [0, 0, 0], [1, 5, dim]);
using last = await slice(x, [0, 5, 0], [1, 1, dim]);
using y5 = await mha.forward(prompt, { cache });
using y6 = await mha.forward(last, { cache });

const expected = (await full.data()).subarray(5 * dim);
const stepped = await y6.data();
console.log('shapes:', y5.shape, y6.shape); // [1,5,32] [1,1,32]
console.log('decode = prefill:', stepped.every((v, i) => Math.abs(v - (expected[i] as number)) < 1e-5));
console.log('cached tokens:', cache.lengths); // [6]
// #endregion example
await backend.dispose();
