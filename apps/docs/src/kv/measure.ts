// Checks the calculator's arithmetic against real allocations on the page's backend: the caches
// of @attnkit/kvcache where one exists for the layout (K/V, MLA latent, DSA indexer keys, NSA's
// raw and compressed rows), and for DeepSeek's deployed mixed-precision layout — which kvcache
// accounts for (`ropeDtype`) but no single cache stores — one token's worth of each segment as
// tensor-core tensors. Either way the number comes from the allocator, not from the formula it
// checks.

import { type CacheLayout, cacheSegments, quantBlock } from './layouts.js';
import { ContiguousKVCache, IndexerKeyCache, type KVCache, MLALatentCache, NSACache, type NSACompressor, type StorageDType } from '@attnkit/kvcache';
import { type Backend, type DType, type Tensor, isQuantized, zeros } from '@attnkit/tensor-core';

export interface Measurement {
  /** Bytes per token per layer, as allocated. */
  readonly bytes: number;
  /**
   * What this backend should allocate for the layout's rows (its `storageBytes`): the format's
   * bytes, or more where the backend stores a dtype in wider words (16-bit values on WebGPU).
   */
  readonly expected: number;
  /** What was allocated: the caches' kinds (`contiguous`, `mla-latent`, …), or `tensors`. */
  readonly by: string;
}

function isStorageDType(dtype: DType): dtype is StorageDType {
  return dtype !== 'i32';
}

/** The caches kvcache would use for this layout, each holding one token (initialCapacity 1); null when it has none. */
function cachesFor(backend: Backend, layout: CacheLayout, dtype: StorageDType): { caches: KVCache[]; tokens: number } | null {
  const one = { batchSize: 1, dtype, initialCapacity: 1, step: 1 };
  switch (layout.variant) {
    case 'MHA':
    case 'GQA':
    case 'MQA':
      return { caches: [new ContiguousKVCache(backend, { ...one, kvHeads: layout.kvHeads, keyDim: layout.keyDim, valueDim: layout.valueDim })], tokens: 1 };
    case 'MLA':
    case 'DSA': {
      if (layout.deployedFp8) return null;
      const caches: KVCache[] = [new MLALatentCache(backend, { ...one, kvLoraRank: layout.latentDim, ropeDim: layout.ropeDim })];
      if (layout.variant === 'DSA') caches.push(new IndexerKeyCache(backend, { ...one, keyDim: layout.indexDim }));
      return { caches, tokens: 1 };
    }
    case 'NSA':
      return null; // measured by measureNSA: its compressed rows exist only once blocks complete
  }
}

/**
 * NSA's amortised bytes from a real NSACache: after one block of l tokens, d more tokens add d raw
 * rows and exactly one compressed row (the cache grows by `step = d` raw tokens and one block).
 * The compressor returns zeros: only the allocation is measured.
 */
async function measureNSA(backend: Backend, layout: Extract<CacheLayout, { variant: 'NSA' }>, dtype: StorageDType): Promise<number> {
  const { kvHeads: Hkv, keyDim: D, valueDim: Dv, blockLength: l, stride: d } = layout;
  const compress: NSACompressor = (batch) => {
    const N = batch.keys.shape[0] ?? 0;
    return Promise.resolve({ keys: zeros(backend, [N, Hkv, D]), values: zeros(backend, [N, Hkv, Dv]) });
  };
  using cache = new NSACache(backend, { batchSize: 1, dtype, kvHeads: Hkv, keyDim: D, valueDim: Dv, blockLength: l, blockStride: d, initialCapacity: l, step: d, compress });
  const append = async (tokens: number): Promise<void> => {
    using k = zeros(backend, [1, tokens, Hkv, D]); // [B, S, Hkv, D]
    using v = zeros(backend, [1, tokens, Hkv, Dv]);
    await cache.updateAndFetch(k, v);
  };
  await append(l);
  const before = cache.nbytes;
  await append(d);
  return (cache.nbytes - before) / d;
}

/** Allocates one token's cache for `layout` in `dtype` on `backend`, reads the bytes, frees it. */
export async function measureBytesPerTokenPerLayer(backend: Backend, layout: CacheLayout, dtype: DType): Promise<Measurement> {
  if (!isStorageDType(dtype)) throw new RangeError(`measureBytesPerTokenPerLayer: ${dtype} is not a cache storage dtype`);
  const expected = expectedBytes(backend, layout, dtype);
  if (layout.variant === 'NSA') return { bytes: await measureNSA(backend, layout, dtype), expected, by: 'nsa' };
  const made = cachesFor(backend, layout, dtype);
  if (made) {
    const { caches, tokens } = made;
    try {
      return { bytes: caches.reduce((sum, c) => sum + c.nbytes, 0) / tokens, expected, by: caches.map((c) => c.kind).join(' + ') };
    } finally {
      for (const c of caches) c.dispose();
    }
  }
  const segments = cacheSegments(layout);
  // enough tokens that every amortised segment stores whole rows (NSA: one compressed block per d)
  const tokens = segments.reduce((t, s) => Math.max(t, Math.round(1 / s.perToken)), 1);
  const before = backend.memory().bytesAllocated;
  const held: Tensor[] = [];
  try {
    for (const s of segments) {
      const storage = s.fixedDType ?? dtype;
      // [tokens, rows, width]: the token-major layout the caches use
      held.push(zeros(backend, [Math.round(tokens * s.perToken), s.rows, s.width], storage, isQuantized(storage) ? quantBlock(s.width) : undefined));
    }
    return { bytes: (backend.memory().bytesAllocated - before) / tokens, expected, by: 'tensors' };
  } finally {
    for (const t of held) t.dispose();
  }
}

/** Bytes per token per layer that `backend` stores for `layout` in `dtype`, from its storage format. */
export function expectedBytes(backend: Backend, layout: CacheLayout, dtype: DType): number {
  return cacheSegments(layout).reduce((sum, s) => {
    const storage = s.fixedDType ?? dtype;
    const block = isQuantized(storage) ? quantBlock(s.width) : undefined;
    return sum + s.rows * backend.storageBytes(storage, s.width, block) * s.perToken;
  }, 0);
}
