// What one token leaves behind in one layer's KV cache, for every attention variant (spec §1–§5),
// stored the way @attnkit/kvcache stores it: one row per kv head, MLA's [c ‖ k_pe] as one row,
// quantised rows with kvcache's default scale blocks. The byte figures are kvcache's own
// accounting (`kvBytesPerToken`); the segments here are the breakdown the calculator measures
// row by row on the page's backend.

import { type KVCacheConfig, type StorageDType, defaultBlockSize, kvBytesPerToken } from '@attnkit/kvcache';
import type { DType } from '@attnkit/tensor-core';

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
  | { readonly variant: 'NSA'; readonly kvHeads: number; readonly keyDim: number; readonly valueDim: number; readonly blockLength: number; readonly stride: number };

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

/** The layout as a configuration of kvcache's byte accounting, stored in `dtype`. */
export function kvConfigOf(layout: CacheLayout, dtype: DType): KVCacheConfig {
  if (dtype === 'i32') throw new RangeError('kvConfigOf: i32 is not a cache storage dtype');
  const storage: StorageDType = dtype;
  switch (layout.variant) {
    case 'MHA':
    case 'GQA':
    case 'MQA': {
      const variant = layout.variant === 'MHA' ? 'mha' : layout.variant === 'GQA' ? 'gqa' : 'mqa';
      return { variant, kvHeads: layout.kvHeads, headDim: layout.keyDim, valueDim: layout.valueDim, dtype: storage };
    }
    case 'MLA':
    case 'DSA': {
      // Deployed: fp8 latent and indexer key with 128-value blocks, the rope key in bf16.
      const deployed = layout.deployedFp8 ? ({ dtype: 'fp8e4m3', ropeDtype: 'bf16', indexDtype: 'fp8e4m3', blockSize: 128 } as const) : { dtype: storage };
      const mla = { kvLoraRank: layout.latentDim, ropeDim: layout.ropeDim, ...deployed };
      return layout.variant === 'MLA' ? { variant: 'mla', ...mla } : { variant: 'dsa', ...mla, indexDim: layout.indexDim };
    }
    case 'NSA':
      return { variant: 'nsa', kvHeads: layout.kvHeads, headDim: layout.keyDim, valueDim: layout.valueDim, blockLength: layout.blockLength, blockStride: layout.stride, dtype: storage };
  }
}

/** Bytes per token per layer in `dtype` storage, block scales (f32 each) included: kvcache's `kvBytesPerToken`. */
export function bytesPerTokenPerLayer(layout: CacheLayout, dtype: DType): number {
  return kvBytesPerToken(kvConfigOf(layout, dtype));
}

/** Whether a layout ignores the selected dtype (its storage is fixed, as DeepSeek deploys it). */
export function hasFixedStorage(layout: CacheLayout): boolean {
  return cacheSegments(layout).every((s) => s.fixedDType !== undefined);
}
