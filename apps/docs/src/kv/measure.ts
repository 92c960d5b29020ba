// Checks the calculator's arithmetic against a real allocation: one token's worth of every cache
// segment is allocated on the backend, and the backend's own memory report is read back.
//
// TODO(kvcache): when @attnkit/kvcache lands, measure a real cache instead — append `stride`
// tokens to the cache class of each variant and read its `nbytes` — so the demo checks the
// package's accounting, not only tensor-core's storage.

import { type Backend, type Tensor, zeros } from '@attnkit/tensor-core';
import { type CacheLayout, cacheSegments, quantBlock } from './layouts.js';
import type { DType } from '@attnkit/tensor-core';

/**
 * Bytes the backend reports for the cache rows of `tokens` tokens of one layer (segments stored
 * once per `1/perToken` tokens get tokens·perToken rows), divided by `tokens`. Everything
 * allocated is disposed before returning.
 */
export function measureBytesPerTokenPerLayer(backend: Backend, layout: CacheLayout, dtype: DType): number {
  const segments = cacheSegments(layout);
  // enough tokens that every amortised segment stores whole rows (NSA: one compressed block per d)
  const tokens = segments.reduce((t, s) => Math.max(t, Math.round(1 / s.perToken)), 1);
  const before = backend.memory().bytesAllocated;
  const held: Tensor[] = [];
  try {
    for (const s of segments) {
      const rows = Math.round(tokens * s.perToken);
      const storage = s.fixedDType ?? dtype;
      // [tokens, Hkv, width]: the token-major layout the caches use
      held.push(zeros(backend, [rows, s.rows, s.width], storage, storage === 'int8' || storage === 'fp8e4m3' ? quantBlock(s.width) : undefined));
    }
    return (backend.memory().bytesAllocated - before) / tokens;
  } finally {
    for (const t of held) t.dispose();
  }
}
