// What one token leaves behind in one layer's KV cache, for every attention variant (spec §1–§5),
// stored the way @attnkit/kvcache stores it: one row per kv head, MLA's [c ‖ k_pe] as one row,
// quantised rows with kvcache's default scale blocks.
//
// TODO(kvcache): @attnkit/kvcache will export `kvBytesPerToken(config)` / `kvBytes(config, tokens)`
// (issue 4). Once it lands, compute `bytesPerTokenPerLayer` with it and keep this file only as the
// segment breakdown the calculator displays; the unit tests (src/kv/kv.test.ts) then pin both to
// spec §5.

import { defaultBlockSize } from '@attnkit/kvcache';
import { type DType, storageBytes } from '@attnkit/tensor-core';

export type Variant = 'MHA' | 'GQA' | 'MQA' | 'MLA' | 'DSA' | 'NSA';

/** One tensor a cache keeps per token: `rows` vectors of `width` values (one row per kv head). */
export interface CacheSegment {
  readonly name: string;
  readonly rows: number;
  readonly width: number;
  /** Fraction of tokens that store this segment (NSA's compressed blocks: one per stride d). */
  readonly perToken: number;
  /** Storage this segment always uses, whatever the cache dtype (DeepSeek's deployed bf16 rope key). */
  readonly fixedDType?: DType;
}

/** A cache layout: how one attention variant, with given sizes, stores one token of one layer. */
export type CacheLayout =
  | { readonly variant: 'MHA' | 'GQA' | 'MQA'; readonly kvHeads: number; readonly keyDim: number; readonly valueDim: number }
  | { readonly variant: 'MLA'; readonly latentDim: number; readonly ropeDim: number; readonly deployedFp8?: boolean }
  | { readonly variant: 'DSA'; readonly latentDim: number; readonly ropeDim: number; readonly indexDim: number; readonly deployedFp8?: boolean }
  | { readonly variant: 'NSA'; readonly kvHeads: number; readonly keyDim: number; readonly valueDim: number; readonly stride: number };

/** The tensors one token adds to one layer's cache. */
export function cacheSegments(layout: CacheLayout): CacheSegment[] {
  switch (layout.variant) {
    case 'MHA':
    case 'GQA':
    case 'MQA':
      // §1: K [Hkv, D] and V [Hkv, Dv] per token
      return [
        { name: 'K', rows: layout.kvHeads, width: layout.keyDim, perToken: 1 },
        { name: 'V', rows: layout.kvHeads, width: layout.valueDim, perToken: 1 },
      ];
    case 'MLA':
    case 'DSA': {
      // §2: the latent c [C] and the shared rope key k_pe [dr], cached as one [C + dr] row
      // (MLALatentCache); §3 adds the indexer key [D_I] (IndexerKeyCache). Deployed (V3.2
      // inference code): latent and indexer key in fp8 with 128-value blocks, the rope key in
      // bf16 — 656 + 132 bytes per token per layer.
      const segments: CacheSegment[] = layout.deployedFp8
        ? [
            { name: 'latent c', rows: 1, width: layout.latentDim, perToken: 1, fixedDType: 'fp8e4m3' },
            { name: 'rope key k_pe', rows: 1, width: layout.ropeDim, perToken: 1, fixedDType: 'bf16' },
          ]
        : [{ name: 'latent row [c ‖ k_pe]', rows: 1, width: layout.latentDim + layout.ropeDim, perToken: 1 }];
      if (layout.variant === 'DSA') {
        const indexer: CacheSegment = { name: 'indexer key k_I', rows: 1, width: layout.indexDim, perToken: 1 };
        segments.push(layout.deployedFp8 ? { ...indexer, fixedDType: 'fp8e4m3' } : indexer);
      }
      return segments;
    }
    case 'NSA':
      // §4: raw K/V (selection and window read them) plus one compressed K/V per stride d
      return [
        { name: 'K', rows: layout.kvHeads, width: layout.keyDim, perToken: 1 },
        { name: 'V', rows: layout.kvHeads, width: layout.valueDim, perToken: 1 },
        { name: 'compressed K', rows: layout.kvHeads, width: layout.keyDim, perToken: 1 / layout.stride },
        { name: 'compressed V', rows: layout.kvHeads, width: layout.valueDim, perToken: 1 / layout.stride },
      ];
  }
}

/**
 * Values per quantisation scale along a row, as kvcache picks it (`defaultBlockSize`): 128 when
 * it divides the row, the row itself when narrower, else the largest power of two dividing it
 * (64 for MLA's 576-wide row, so no block straddles the latent/rope boundary).
 */
export function quantBlock(width: number): number {
  return defaultBlockSize(width);
}

/** Cached values per token per layer (NSA's compressed blocks amortised over the stride). */
export function elementsPerTokenPerLayer(layout: CacheLayout): number {
  return cacheSegments(layout).reduce((sum, s) => sum + s.rows * s.width * s.perToken, 0);
}

/** Bytes per token per layer in `dtype` storage, block scales (f32 each) included. */
export function bytesPerTokenPerLayer(layout: CacheLayout, dtype: DType): number {
  return cacheSegments(layout).reduce((sum, s) => {
    const storage = s.fixedDType ?? dtype;
    return sum + s.rows * storageBytes(storage, s.width, quantBlock(s.width)) * s.perToken;
  }, 0);
}

/** Whether a layout ignores the selected dtype (its storage is fixed, as DeepSeek deploys it). */
export function hasFixedStorage(layout: CacheLayout): boolean {
  return cacheSegments(layout).every((s) => s.fixedDType !== undefined);
}
