// Checks the calculator's arithmetic against real allocations on the page's backend: the caches
// of @attnkit/kvcache where one exists for the layout (K/V, MLA latent, DSA indexer keys), and
// for the rest (DeepSeek's deployed mixed-precision layout, NSA) one token's worth of each
// segment as tensor-core tensors. Either way the number comes from the allocator, not from the
// formula it checks.
//
// TODO(kvcache): measure NSA with NSACache (it needs a compressor; append d tokens, read nbytes)
// and the deployed fp8 layout with whatever kvcache offers for it once kvBytesPerToken lands.

import { type CacheLayout, cacheSegments, quantBlock } from './layouts.js';
import { ContiguousKVCache, IndexerKeyCache, type KVCache, MLALatentCache, type StorageDType } from '@attnkit/kvcache';
import { type Backend, type DType, type Tensor, isQuantized, zeros } from '@attnkit/tensor-core';

export interface Measurement {
  /** Bytes per token per layer, as allocated. */
  readonly bytes: number;
  /**
   * What this backend's storage format predicts for the layout (Backend.storageBytes per
   * segment): the spec's bytes on a backend that stores compactly (the CPU backend), more where
   * it widens values (gpu.js keeps 16-bit values in 32-bit words).
   */
  readonly expected: number;
  /** What was allocated: the caches' kinds (`contiguous`, `mla-latent`, …), or `tensors`. */
  readonly by: string;
}

function isStorageDType(dtype: DType): dtype is StorageDType {
  return dtype !== 'i32';
}

/** The caches kvcache would use for this layout, each holding one token (initialCapacity 1); null when it has none. */
function cachesFor(backend: Backend, layout: CacheLayout, dtype: StorageDType): KVCache[] | null {
  const one = { batchSize: 1, dtype, initialCapacity: 1, step: 1 };
  switch (layout.variant) {
    case 'MHA':
    case 'GQA':
    case 'MQA':
      return [new ContiguousKVCache(backend, { ...one, kvHeads: layout.kvHeads, keyDim: layout.keyDim, valueDim: layout.valueDim })];
    case 'MLA':
    case 'DSA': {
      if (layout.deployedFp8) return null;
      const caches: KVCache[] = [new MLALatentCache(backend, { ...one, kvLoraRank: layout.latentDim, ropeDim: layout.ropeDim })];
      if (layout.variant === 'DSA') caches.push(new IndexerKeyCache(backend, { ...one, keyDim: layout.indexDim }));
      return caches;
    }
    case 'NSA':
      return null;
  }
}

/** Allocates one token's cache for `layout` in `dtype` on `backend`, reads the bytes, frees it. */
export function measureBytesPerTokenPerLayer(backend: Backend, layout: CacheLayout, dtype: DType): Measurement {
  if (!isStorageDType(dtype)) throw new RangeError(`measureBytesPerTokenPerLayer: ${dtype} is not a cache storage dtype`);
  const caches = cachesFor(backend, layout, dtype);
  if (caches) {
    try {
      return { bytes: caches.reduce((sum, c) => sum + c.nbytes, 0), expected: expectedBytes(backend, layout, dtype), by: caches.map((c) => c.kind).join(' + ') };
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
    return { bytes: (backend.memory().bytesAllocated - before) / tokens, expected: expectedBytes(backend, layout, dtype), by: 'tensors' };
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
