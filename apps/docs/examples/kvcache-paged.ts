/* eslint-disable no-console -- an example prints what it computes */
// #region example
import { attention } from '@attnkit/attention-mha';
import { PagePool, PagedKVCache, formatBytes, kvBytesPerToken } from '@attnkit/kvcache';
import { createBackend, tensor } from '@attnkit/tensor-core';

const { backend } = await createBackend();
const values = (n: number, phase: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(0.29 * i + phase));
const [Hkv, D] = [2, 16];

// A pool of 64 pages of 16 tokens shared by every sequence, as vLLM's PagedAttention keeps it.
using pool = new PagePool(backend, { kvHeads: Hkv, keyDim: D, pageSize: 16, numPages: 64 });
using cache = new PagedKVCache(pool, { batchSize: 1 });
using promptK = tensor(backend, values(40 * Hkv * D, 0), [1, 40, Hkv, D]); // [B, S, Hkv, D]
using promptV = tensor(backend, values(40 * Hkv * D, 1), [1, 40, Hkv, D]);
await cache.updateAndFetch(promptK, promptV); // 40 tokens: pages 0, 1 and 2 (partly filled)
console.log('free pages after the prompt:', pool.freePages); // 61

// Beam search: fork the sequence. The copy shares all three pages; the first write into the
// shared, partly filled page copies that page only.
const beam = cache.fork(0);
using stepK = tensor(backend, values(2 * Hkv * D, 2), [2, 1, Hkv, D]); // one new token per sequence
using stepV = tensor(backend, values(2 * Hkv * D, 3), [2, 1, Hkv, D]);
const view = await cache.updateAndFetch(stepK, stepV);
console.log('beam', beam, 'lengths', view.lengths, 'free pages:', pool.freePages); // beam 1 lengths [41,41] free pages: 60

// Attention reads the pool through the view's row map: key t of sequence b is pool row rowMap[b, t].
using q = tensor(backend, values(2 * 4 * D, 4), [2, 1, 4, D]); // 4 query heads over 2 kv heads
const { out } = await attention(q, view.keys, view.values, { kvLengths: view.lengths, rowMap: view.rowMap });
console.log('decode output:', out.shape); // [2, 1, 4, 16]
out.dispose();

// Bytes per token, from the configuration alone (spec §5): DeepSeek-V3's latent over 61 layers.
console.log('MLA, bf16, 61 layers:', formatBytes(kvBytesPerToken({ variant: 'mla', kvLoraRank: 512, ropeDim: 64, dtype: 'bf16', layers: 61 })));
console.log('DSA, bf16, per layer:', kvBytesPerToken({ variant: 'dsa', kvLoraRank: 512, ropeDim: 64, indexDim: 128, dtype: 'bf16' }), 'B');
// #endregion example
await backend.dispose();
