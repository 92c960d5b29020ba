/* eslint-disable no-console -- an example prints what it computes */
// #region example
import { NativeSparseAttention, keysReadPerStep, resolveNSAConfig } from '@attnkit/attention-nsa';
import { NSACache } from '@attnkit/kvcache';
import { type Tensor, createBackend, slice, tensor } from '@attnkit/tensor-core';

const { backend } = await createBackend();
const values = (n: number, phase: number): Float32Array => Float32Array.from({ length: n }, (_, i) => 0.5 * Math.sin(0.53 * i + phase));
const random = (shape: number[], phase: number) => tensor(backend, values(shape.reduce((a, b) => a * b), phase), shape);

// 4 query heads over 2 kv heads of 16; the paper's block geometry scaled down so that 40 tokens
// hold several blocks: compression blocks of l = 8 every d = 4, selection blocks of l′ = 8,
// n = 3 blocks per query (block 0 and the two local ones forced), a window of w = 8.
const [T, Hq, Hkv, D, X] = [40, 4, 2, 16, 32];
const nsa = new NativeSparseAttention(
  { nHeads: Hq, nKvHeads: Hkv, headDim: D, gateDim: X, cmpBlock: 8, cmpStride: 4, slcBlock: 8, nSelected: 3, window: 8 },
  { gateWeight: random([3 * Hq, X], 0), gateBias: random([3 * Hq], 1) }, // sigmoid gates, (head, branch) interleaved
);

// Projected q, k, v (token-major, RoPE already applied) and the layer input x the gates read.
using q = random([1, T, Hq, D], 2);
using k = random([1, T, Hkv, D], 3);
using v = random([1, T, Hkv, D], 4);
using x = random([1, T, X], 5);

// A prefill over all 40 tokens, with every intermediate.
const result = await nsa.forward(q, k, v, x, { returnStages: true });
using prefill = result.out; // [1, T, Hq, D]
using stages = result.stages;
const picks = await stages?.selectedBlocks.dataInt(); // i32 [1, T, Hkv, n], best first, −1 padded
console.log('query 39, kv head 0 reads blocks', Array.from(picks?.subarray((39 * Hkv + 0) * 3, (39 * Hkv + 0) * 3 + 3) ?? []).sort((a, b) => a - b));

// The same through the NSA cache: a 39-token prompt, then one decode step. The cache hands each
// block an append completes to nsa.compress, once.
using cache = new NSACache(backend, {
  batchSize: 1, kvHeads: Hkv, keyDim: D, valueDim: D,
  blockLength: nsa.config.cmpBlock, blockStride: nsa.config.cmpStride, compress: nsa.compress,
});
/** Tokens from … from + n − 1 of a token-major tensor. */
const tokens = (t: Tensor, from: number, n: number) => slice(t, t.shape.map((_, a) => (a === 1 ? from : 0)), t.shape.map((d, a) => (a === 1 ? n : d)));
using qP = await tokens(q, 0, 39);
using kP = await tokens(k, 0, 39);
using vP = await tokens(v, 0, 39);
using xP = await tokens(x, 0, 39);
using qS = await tokens(q, 39, 1);
using kS = await tokens(k, 39, 1);
using vS = await tokens(v, 39, 1);
using xS = await tokens(x, 39, 1);
(await nsa.forward(qP, kP, vP, xP, { cache })).out.dispose();
using step = (await nsa.forward(qS, kS, vS, xS, { cache })).out; // [1, 1, Hq, D]
const [p, s] = await Promise.all([prefill.data(), step.data()]);
console.log('decode = prefill:', s.every((value, i) => Math.abs(value - (p[39 * Hq * D + i] as number)) < 1e-5));

// What a decode step reads at 64K tokens with the paper's settings, per kv head.
const paper = resolveNSAConfig({ nHeads: 64, nKvHeads: 4, headDim: 192, vHeadDim: 128, gateDim: 2560 });
console.log('keys read at 64K:', keysReadPerStep(65_536, paper).total); // 4095 + 1024 + 512
// #endregion example
await backend.dispose();
