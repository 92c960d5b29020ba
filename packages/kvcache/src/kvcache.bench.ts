// Decode-step cost of each cache layout on the CPU backend: one token appended to every
// sequence of a batch (B 4, Hkv 8, D 128, f32 or fp8), starting from a 1 000-token prefix (mid-page, so the paged cache takes no new page).
// `pnpm --filter @attnkit/kvcache bench`.
import { CpuBackend, tensor } from '@attnkit/tensor-core';
import { bench, describe } from 'vitest';
import { ContiguousKVCache } from './contiguous.js';
import { PagePool } from './page-pool.js';
import { PagedKVCache } from './paged.js';
import { SlidingWindowKVCache } from './sliding-window.js';
import type { KVCache, StorageDType } from './types.js';

const [B, H, D, PREFIX] = [4, 8, 128, 1000];
const backend = new CpuBackend();
const random = (n: number): Float32Array => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898) * 0.5);
const prefix = tensor(backend, random(B * PREFIX * H * D), [B, PREFIX, H, D]);
const token = tensor(backend, random(B * H * D), [B, 1, H, D]);

async function decodeBench(make: () => KVCache): Promise<() => Promise<void>> {
  const cache = make();
  await cache.updateAndFetch(prefix, prefix);
  return async () => {
    // Append one token, then roll back so every iteration measures the same step.
    const lengths = cache.lengths;
    await cache.updateAndFetch(token, token);
    cache.truncate(lengths);
  };
}

for (const dtype of ['f32', 'fp8e4m3'] as const satisfies readonly StorageDType[]) {
  describe(`decode step, B ${B}, Hkv ${H}, D ${D}, ${dtype}`, async () => {
    const contiguous = await decodeBench(() => new ContiguousKVCache(backend, { batchSize: B, kvHeads: H, keyDim: D, dtype }));
    const pool = new PagePool(backend, { kvHeads: H, keyDim: D, dtype, pageSize: 16, numPages: (B * (PREFIX + 32)) / 16 });
    const paged = await decodeBench(() => new PagedKVCache(pool, { batchSize: B }));
    const sliding = await decodeBench(() => new SlidingWindowKVCache(backend, { batchSize: B, kvHeads: H, keyDim: D, dtype, window: 512, maxChunk: PREFIX }));
    bench('contiguous (step 256)', contiguous);
    bench('paged (16-token pages)', paged);
    bench('sliding window (w 512)', sliding);
  });
}
