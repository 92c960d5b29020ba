// Row geometry and the boundary checks every cache shares. A failed check throws before the
// cache changes anything, so a refused call leaves it exactly as it was.

import {
  type Backend,
  BackendError,
  CapacityError,
  ConfigError,
  DTypeError,
  ShapeError,
  type Tensor,
  formatShape,
  isQuantized,
} from '@attnkit/tensor-core';
import type { RowOptions, StorageDType, ValueLayout } from './types.js';

const STORAGE_DTYPES: readonly StorageDType[] = ['f32', 'f16', 'bf16', 'int8', 'fp8e4m3'];
const INPUT_DTYPES = ['f32', 'f16', 'bf16'] as const;

/** A resolved, validated row geometry. */
export interface RowLayout {
  readonly kvHeads: number;
  readonly keyDim: number;
  /** Value width read by attention: Dv for `separate`, the key prefix for `keyPrefix`, 0 for `none`. */
  readonly valueDim: number;
  readonly values: ValueLayout;
  readonly dtype: StorageDType;
  /** Scale block of quantised key rows (1 for float storage). */
  readonly keyBlockSize: number;
  /** Scale block of quantised value rows (1 for float storage or no separate values). */
  readonly valueBlockSize: number;
}

/**
 * The default scale block for a row of `width` values: 128 when it divides the row (DeepSeek's
 * fp8 block), the row itself when narrower, else the largest power of two dividing the row
 * (so a block never straddles MLA's latent/rope boundary: 64 for 512 + 64).
 */
export function defaultBlockSize(width: number): number {
  if (width % 128 === 0) return 128;
  if (width < 128) return width;
  let block = 1;
  while (block < 128 && width % (block * 2) === 0) block *= 2;
  return block;
}

export function isStorageDType(dtype: unknown): dtype is StorageDType {
  return STORAGE_DTYPES.some((d) => d === dtype);
}

export function expectPositiveInt(fn: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ConfigError({ fn, expected: `${name} to be a positive integer`, got: String(value) });
  }
  return value;
}

export function expectNonNegativeInt(fn: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new ConfigError({ fn, expected: `${name} to be a non-negative integer`, got: String(value) });
  }
  return value;
}

/** A capacity: a positive integer or Infinity. */
export function expectCapacity(fn: string, name: string, value: unknown): number {
  if (value === Infinity) return Infinity;
  return expectPositiveInt(fn, name, value);
}

export function resolveStorageDType(fn: string, dtype: unknown): StorageDType {
  const d = dtype ?? 'f32';
  if (!isStorageDType(d)) throw new DTypeError({ fn, expected: `a storage dtype (${STORAGE_DTYPES.join(', ')})`, got: typeof d === 'string' ? d : JSON.stringify(d) });
  return d;
}

/** The scale block for a row of `width` values stored as `dtype` (1 for float storage). */
export function resolveBlockSize(fn: string, dtype: StorageDType, width: number, blockSize: number | undefined, what: string): number {
  if (!isQuantized(dtype)) return 1;
  const block = blockSize ?? defaultBlockSize(width);
  if (!Number.isInteger(block) || block < 1 || width % block !== 0) {
    throw new ConfigError({ fn, expected: `a ${dtype} scale block dividing the ${what} width ${width}`, got: String(blockSize) });
  }
  return block;
}

export function resolveLayout(fn: string, options: RowOptions): RowLayout {
  const kvHeads = expectPositiveInt(fn, 'kvHeads', options.kvHeads);
  const keyDim = expectPositiveInt(fn, 'keyDim', options.keyDim);
  const values = options.values ?? 'separate';
  if (values !== 'separate' && values !== 'keyPrefix' && values !== 'none') {
    throw new ConfigError({ fn, expected: "values 'separate', 'keyPrefix' or 'none'", got: String(values) });
  }
  const dtype = resolveStorageDType(fn, options.dtype);
  let valueDim: number;
  if (values === 'separate') {
    valueDim = options.valueDim === undefined ? keyDim : expectPositiveInt(fn, 'valueDim', options.valueDim);
  } else if (values === 'keyPrefix') {
    valueDim = expectPositiveInt(fn, 'valueDim', options.valueDim);
    if (valueDim > keyDim) throw new ConfigError({ fn, expected: `valueDim ≤ keyDim (${keyDim}) when values are a key prefix`, got: String(valueDim) });
  } else {
    valueDim = 0;
  }
  const keyBlockSize = resolveBlockSize(fn, dtype, keyDim, options.blockSize, 'key row');
  const valueBlockSize = values === 'separate' ? resolveBlockSize(fn, dtype, valueDim, options.blockSize, 'value row') : 1;
  return { kvHeads, keyDim, valueDim, values, dtype, keyBlockSize, valueBlockSize };
}

/** Refuses a call on a disposed cache or while an update of the same cache is still running. */
export function assertUsable(fn: string, disposed: boolean, busy: boolean): void {
  if (disposed) throw new BackendError({ fn, expected: 'a live cache', got: 'a cache after dispose()' });
  if (busy) {
    throw new ConfigError({ fn, expected: 'one update at a time per cache (await the previous updateAndFetch)', got: 'a call while an update is in flight' });
  }
}

/**
 * Checks k [B, S, Hkv, D] and v [B, S, Hkv, Dv] (or null, per the value layout) against the
 * cache and returns S.
 */
export function validateAppend(fn: string, backend: Backend, layout: RowLayout, batchSize: number, k: Tensor, v: Tensor | null): number {
  checkInput(fn, backend, 'k', k);
  const { kvHeads, keyDim } = layout;
  if (k.rank !== 4 || k.shape[0] !== batchSize || k.shape[2] !== kvHeads || k.shape[3] !== keyDim) {
    throw new ShapeError({ fn, expected: `k of shape [${batchSize}, S, ${kvHeads}, ${keyDim}] (B, S, Hkv, D)`, got: formatShape(k.shape) });
  }
  const S = k.shape[1] as number;
  if (S < 1) throw new ShapeError({ fn, expected: 'at least one new token (S ≥ 1)', got: formatShape(k.shape) });
  if (layout.values === 'separate') {
    if (!v) throw new ShapeError({ fn, expected: `v of shape [${batchSize}, ${S}, ${kvHeads}, ${layout.valueDim}]`, got: 'null' });
    checkInput(fn, backend, 'v', v);
    if (v.rank !== 4 || v.shape[0] !== batchSize || v.shape[1] !== S || v.shape[2] !== kvHeads || v.shape[3] !== layout.valueDim) {
      throw new ShapeError({ fn, expected: `v of shape [${batchSize}, ${S}, ${kvHeads}, ${layout.valueDim}] (B, S, Hkv, Dv)`, got: formatShape(v.shape) });
    }
  } else if (v) {
    const why = layout.values === 'keyPrefix' ? `the first ${layout.valueDim} key channels are the values` : 'the cache holds keys only';
    throw new ShapeError({ fn, expected: `v = null (${why})`, got: `a tensor of shape ${formatShape(v.shape)}` });
  }
  return S;
}

function checkInput(fn: string, backend: Backend, name: string, t: Tensor): void {
  t.assertAlive(fn);
  if (t.backend !== backend) {
    throw new BackendError({ fn, expected: `${name} on the cache's backend (${backend.info.name})`, got: `a tensor on ${t.backend.info.name}` });
  }
  if (!INPUT_DTYPES.some((d) => d === t.dtype)) {
    throw new DTypeError({ fn, expected: `${name} of dtype ${INPUT_DTYPES.join(', ')} (the cache quantises on write)`, got: t.dtype });
  }
}

/** Throws CapacityError unless every sequence can take `S` more tokens. */
export function checkCapacity(fn: string, lengths: readonly number[], S: number, capacity: number): void {
  for (const [b, len] of lengths.entries()) {
    if (len + S > capacity) {
      throw new CapacityError({ fn, expected: `at most ${capacity} tokens per sequence`, got: `sequence ${b}: ${len} held + ${S} new = ${len + S}` });
    }
  }
}

/** The per-sequence target lengths of a truncate call, validated against the current lengths. */
export function resolveTruncation(fn: string, lengths: readonly number[], length: number | readonly number[]): number[] {
  const targets = typeof length === 'number' ? lengths.map(() => length) : [...length];
  if (targets.length !== lengths.length) {
    throw new ShapeError({ fn, expected: `one length or ${lengths.length} (one per sequence)`, got: `${targets.length} lengths` });
  }
  for (const [b, n] of targets.entries()) {
    const held = lengths[b] as number;
    if (!Number.isInteger(n) || n < 0 || n > held) {
      throw new CapacityError({ fn, expected: `a length in [0, ${held}] for sequence ${b} (its current length)`, got: String(n) });
    }
  }
  return targets;
}
