// The KV-cache calculator's table, as plain data: what each row shows for a storage dtype, a
// context length and a batch size. The Vue component only renders it.

import type { DType } from '@attnkit/tensor-core';
import { formatBytes, formatCount } from './format.js';
import { bytesPerTokenPerLayer, elementsPerTokenPerLayer, hasFixedStorage } from './layouts.js';
import type { CacheRow } from './models.js';

/** Storage dtypes a cache can use (tensor-core's, minus i32). */
export const CACHE_DTYPES: readonly { readonly dtype: DType; readonly label: string }[] = [
  { dtype: 'f32', label: 'f32 (4 B)' },
  { dtype: 'f16', label: 'f16 (2 B)' },
  { dtype: 'bf16', label: 'bf16 (2 B)' },
  { dtype: 'fp8e4m3', label: 'fp8 e4m3 (1 B + f32 scale per 128-value block)' },
  { dtype: 'int8', label: 'int8 (1 B + f32 scale per 128-value block)' },
];

export interface CalculatorRow {
  readonly row: CacheRow;
  readonly elementsPerLayer: number;
  /** Elements per token over all layers; null when the row is per layer only. */
  readonly elementsAllLayers: number | null;
  readonly bytesPerLayer: number;
  readonly bytesPerToken: number | null;
  /** Bytes for `tokens` tokens of `batch` sequences (a sliding window caps the tokens held). */
  readonly bytesTotal: number | null;
  readonly tokensHeld: number;
  /** The storage of this row, when it does not follow the selected dtype. */
  readonly fixedStorage: boolean;
  readonly text: {
    readonly elementsPerLayer: string;
    readonly elementsAllLayers: string;
    readonly bytesPerLayer: string;
    readonly bytesPerToken: string;
    readonly bytesTotal: string;
  };
}

export interface CalculatorOptions {
  readonly dtype: DType;
  /** Context length per sequence. */
  readonly tokens: number;
  readonly batch: number;
  /** The model's sliding window, if it has one (applies to its published attention). */
  readonly slidingWindow?: number;
}

export function calculatorRows(rows: readonly CacheRow[], options: CalculatorOptions): CalculatorRow[] {
  return rows.map((row) => {
    const elementsPerLayer = elementsPerTokenPerLayer(row.layout);
    const bytesPerLayer = bytesPerTokenPerLayer(row.layout, options.dtype);
    const layers = row.layers;
    const elementsAllLayers = layers === null ? null : elementsPerLayer * layers;
    const bytesPerToken = layers === null ? null : bytesPerLayer * layers;
    const window = row.published ? options.slidingWindow : undefined;
    const tokensHeld = window !== undefined ? Math.min(options.tokens, window) : options.tokens;
    const bytesTotal = bytesPerToken === null ? null : bytesPerToken * tokensHeld * options.batch;
    return {
      row,
      elementsPerLayer,
      elementsAllLayers,
      bytesPerLayer,
      bytesPerToken,
      bytesTotal,
      tokensHeld,
      fixedStorage: hasFixedStorage(row.layout),
      text: {
        elementsPerLayer: formatCount(elementsPerLayer),
        elementsAllLayers: elementsAllLayers === null ? '—' : formatCount(elementsAllLayers),
        bytesPerLayer: `${formatCount(bytesPerLayer)} B`,
        bytesPerToken: bytesPerToken === null ? '—' : formatBytes(bytesPerToken),
        bytesTotal: bytesTotal === null ? '—' : formatBytes(bytesTotal),
      },
    };
  });
}
