/* eslint-disable no-console -- an example prints what it computes */
// #region example
import { attention } from '@attnkit/attention-mha';
import { ContiguousKVCache, MLALatentCache } from '@attnkit/kvcache';
import { createBackend, slice, tensor } from '@attnkit/tensor-core';

const { backend } = await createBackend();
const values = (n: number, phase: number): number[] => Array.from({ length: n }, (_, i) => Math.sin(0.9 * i + phase));

// A GQA layer's cache: 2 kv heads of width 8, room for 8 tokens per growth step.
const [S, Hq, Hkv, D] = [6, 4, 2, 8];
const q = tensor(backend, values(S * Hq * D, 0), [1, S, Hq, D]);
const k = tensor(backend, values(S * Hkv * D, 1), [1, S, Hkv, D]);
const v = tensor(backend, values(S * Hkv * D, 2), [1, S, Hkv, D]);
using cache = new ContiguousKVCache(backend, { batchSize: 1, kvHeads: Hkv, keyDim: D, step: 8 });

// Prefill the first 5 tokens, then decode the 6th against the cache.
const [k5, v5, k1, v1, q1] = await Promise.all([
  slice(k, [0, 0, 0, 0], [1, 5, Hkv, D]),
  slice(v, [0, 0, 0, 0], [1, 5, Hkv, D]),
  slice(k, [0, 5, 0, 0], [1, 1, Hkv, D]),
  slice(v, [0, 5, 0, 0], [1, 1, Hkv, D]),
  slice(q, [0, 5, 0, 0], [1, 1, Hq, D]),
]);
await cache.updateAndFetch(k5, v5);
const view = await cache.updateAndFetch(k1, v1); // keys [1, 8, 2, 8]: storage, valid up to view.lengths
const step = await attention(q1, view.keys, view.values, { kvLengths: view.lengths, rowMap: view.rowMap });
console.log('cached tokens:', view.lengths, 'bytes held:', cache.nbytes); // [6], 8 tokens × 2 × 2 × 8 values × 4 B = 1024

// The decode step equals the last row of a causal prefill over all 6 tokens.
const full = await attention(q, k, v);
const last = (await full.out.data()).subarray((S - 1) * Hq * D);
const decoded = await step.out.data();
console.log('decode = prefill:', decoded.every((x, i) => Math.abs(x - (last[i] as number)) < 1e-6));

// Speculative decoding rolls back; a failed append would leave the cache unchanged.
cache.truncate(5);
console.log('after truncate:', cache.lengths); // [5]

// MLA caches one [c ‖ k_pe] row per token: 512 + 64 = 576 values, bf16 here.
using latent = new MLALatentCache(backend, { batchSize: 1, kvLoraRank: 512, ropeDim: 64, dtype: 'bf16', initialCapacity: 4, step: 4 });
const row = tensor(backend, values(576, 3), [1, 1, 1, 576]);
await latent.updateAndFetch(row, null);
// nbytes is what the backend really holds: 576 × 2 = 1152 B per token in bf16 on the CPU
// backend; gpu.js backends keep 16-bit values in 32-bit words, twice that.
console.log('MLA bytes per token = storageBytes(bf16, 576):', latent.nbytes / 4 === backend.storageBytes('bf16', 576));

for (const t of [q, k, v, k5, v5, k1, v1, q1, step.out, full.out, row]) t.dispose();
// #endregion example
