// KV-cache memory accounting for every attention variant and storage dtype (spec §5). The
// figures follow the row layouts the caches of this package allocate, so a live cache's
// `nbytes` is `batchSize × kvBytes(config, allocatedTokens)` exactly; the deployed fp8 layouts
// DeepSeek describes (a bf16 rope part beside an fp8 latent) are expressed with `ropeDtype`.

import { ConfigError, bytesPerElement, isQuantized } from '@attnkit/tensor-core';
import { defaultBlockSize, expectPositiveInt, resolveStorageDType } from './layout.js';
import { compressedCount } from './nsa.js';
import type { StorageDType } from './types.js';

interface AccountingOptions {
  /** Storage dtype of the cached rows. */
  readonly dtype: StorageDType;
  /** int8 / fp8e4m3: values per f32 scale along each row (default `defaultBlockSize(row width)`). */
  readonly blockSize?: number;
  /** Layers to count (default 1: the figures are per layer). */
  readonly layers?: number;
}

/** MHA, GQA and MQA: K and V per kv head (MQA: kvHeads 1). */
export interface DenseKVConfig extends AccountingOptions {
  readonly variant: 'mha' | 'gqa' | 'mqa';
  readonly kvHeads: number;
  /** D */
  readonly headDim: number;
  /** Dv (default headDim). */
  readonly valueDim?: number;
}

/** MLA: the latent c (C) and the shared rope key k_pe (dr) per token. */
export interface MLAKVConfig extends AccountingOptions {
  readonly variant: 'mla';
  /** C (DeepSeek-V3: 512) */
  readonly kvLoraRank: number;
  /** dr (DeepSeek-V3: 64) */
  readonly ropeDim: number;
  /**
   * Storage of the rope part when it differs from `dtype` (FlashMLA's fp8 cache keeps it in
   * bf16: 512 fp8 + 4 scales + 64 bf16 = 656 B). Default: one [c ‖ k_pe] row in `dtype`, as
   * MLALatentCache stores it.
   */
  readonly ropeDtype?: StorageDType;
}

/** DSA: MLA's cache plus the lightning indexer's key (D_I) per token. */
export interface DSAKVConfig extends Omit<MLAKVConfig, 'variant'> {
  readonly variant: 'dsa';
  /** D_I (DeepSeek-V3.2: 128) */
  readonly indexDim: number;
  /** Storage of the indexer keys (default `dtype`; deployed: fp8e4m3, 132 B per token). */
  readonly indexDtype?: StorageDType;
}

/** NSA: full K/V plus one compressed K/V row per complete block (every d tokens). */
export interface NSAKVConfig extends Omit<DenseKVConfig, 'variant'> {
  readonly variant: 'nsa';
  /** l: tokens per compression block. */
  readonly blockLength: number;
  /** d: stride between block starts. */
  readonly blockStride: number;
}

export type KVCacheConfig = DenseKVConfig | MLAKVConfig | DSAKVConfig | NSAKVConfig;

/** One kind of row a variant stores per token: `count` rows of `width` values in `dtype`. */
export interface KVRowPart {
  readonly name: string;
  readonly count: number;
  readonly width: number;
  readonly dtype: StorageDType;
  /** Scale block (1 for float storage). */
  readonly blockSize: number;
  /** Payload plus scales of the `count` rows of one token. */
  readonly bytes: number;
}

/** The rows one token adds to one layer's cache (NSA's compressed rows are not included: see kvBytes). */
export function kvRowParts(config: KVCacheConfig): KVRowPart[] {
  const fn = 'kvRowParts';
  const dtype = resolveStorageDType(fn, config.dtype);
  const part = (name: string, count: number, width: number, partDtype: StorageDType = dtype): KVRowPart => {
    let block = 1;
    if (isQuantized(partDtype)) {
      block = config.blockSize ?? defaultBlockSize(width);
      if (!Number.isInteger(block) || block < 1 || width % block !== 0) {
        throw new ConfigError({ fn, expected: `a ${partDtype} scale block dividing the ${name} row width ${width}`, got: String(config.blockSize) });
      }
    }
    const rowBytes = width * bytesPerElement(partDtype) + (isQuantized(partDtype) ? (width / block) * 4 : 0);
    return { name, count, width, dtype: partDtype, blockSize: block, bytes: count * rowBytes };
  };
  switch (config.variant) {
    case 'mha':
    case 'gqa':
    case 'mqa':
    case 'nsa': {
      const kvHeads = expectPositiveInt(fn, 'kvHeads', config.kvHeads);
      if (config.variant === 'mqa' && kvHeads !== 1) throw new ConfigError({ fn, expected: 'kvHeads = 1 for MQA', got: String(kvHeads) });
      const headDim = expectPositiveInt(fn, 'headDim', config.headDim);
      const valueDim = expectPositiveInt(fn, 'valueDim', config.valueDim ?? headDim);
      return [part('key', kvHeads, headDim), part('value', kvHeads, valueDim)];
    }
    case 'mla':
    case 'dsa': {
      const C = expectPositiveInt(fn, 'kvLoraRank', config.kvLoraRank);
      const dr = expectPositiveInt(fn, 'ropeDim', config.ropeDim);
      const ropeDtype = config.ropeDtype === undefined ? dtype : resolveStorageDType(fn, config.ropeDtype);
      const latent = ropeDtype === dtype ? [part('latent ‖ rope', 1, C + dr)] : [part('latent', 1, C), part('rope', 1, dr, ropeDtype)];
      if (config.variant === 'mla') return latent;
      const indexDim = expectPositiveInt(fn, 'indexDim', config.indexDim);
      const indexDtype = config.indexDtype === undefined ? dtype : resolveStorageDType(fn, config.indexDtype);
      return [...latent, part('indexer key', 1, indexDim, indexDtype)];
    }
  }
}

function layersOf(config: KVCacheConfig): number {
  return config.layers === undefined ? 1 : expectPositiveInt('kvBytes', 'layers', config.layers);
}

function nsaBlocks(config: NSAKVConfig): { l: number; d: number } {
  return { l: expectPositiveInt('kvBytes', 'blockLength', config.blockLength), d: expectPositiveInt('kvBytes', 'blockStride', config.blockStride) };
}

/**
 * Cached values per token over `layers` layers, scales not counted (spec §5's "elements").
 * NSA's compressed rows are amortised: Hkv·(D + Dv)·(1 + 1/d).
 */
export function kvElementsPerToken(config: KVCacheConfig): number {
  const perLayer = kvRowParts(config).reduce((sum, p) => sum + p.count * p.width, 0);
  const amortised = config.variant === 'nsa' ? perLayer * (1 + 1 / nsaBlocks(config).d) : perLayer;
  return amortised * layersOf(config);
}

/** Bytes per token over `layers` layers, block scales included (NSA amortised as in kvElementsPerToken). */
export function kvBytesPerToken(config: KVCacheConfig): number {
  const perLayer = kvRowParts(config).reduce((sum, p) => sum + p.bytes, 0);
  const amortised = config.variant === 'nsa' ? perLayer * (1 + 1 / nsaBlocks(config).d) : perLayer;
  return amortised * layersOf(config);
}

/**
 * Exact bytes one sequence of `tokens` tokens holds over `layers` layers. NSA counts its
 * complete compressed blocks, N_cmp(T) = ⌊(T − l)/d⌋ + 1 (0 for T < l), one K/V row each.
 */
export function kvBytes(config: KVCacheConfig, tokens: number): number {
  if (!Number.isInteger(tokens) || tokens < 0) throw new ConfigError({ fn: 'kvBytes', expected: 'a non-negative integer token count', got: String(tokens) });
  const perLayer = kvRowParts(config).reduce((sum, p) => sum + p.bytes, 0);
  let rows = tokens;
  if (config.variant === 'nsa') {
    const { l, d } = nsaBlocks(config);
    rows += compressedCount(tokens, l, d);
  }
  return perLayer * rows * layersOf(config);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'] as const;

/** Bytes in binary units with three significant digits, as spec §5 writes them: `4.77 MiB`, `244 KiB`. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) throw new ConfigError({ fn: 'formatBytes', expected: 'a finite, non-negative byte count', got: String(bytes) });
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 ? String(value) : Number(value.toPrecision(3)).toString();
  return `${digits} ${UNITS[unit] ?? 'B'}`;
}
