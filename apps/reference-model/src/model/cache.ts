// The model's cache: one layer cache per decoder layer, kept at the same length. A forward pass
// that fails (an abort, a refused input) rolls every layer back to where the call found it.

import { BackendError } from '@attnkit/tensor-core';
import type { LayerCache } from './attention/index.js';

export class ModelCache implements Disposable {
  readonly layers: readonly LayerCache[];
  readonly batchSize: number;
  /** Most tokens a sequence may hold. */
  readonly maxTokens: number;
  #disposed = false;

  constructor(layers: readonly LayerCache[], batchSize: number, maxTokens: number) {
    this.layers = layers;
    this.batchSize = batchSize;
    this.maxTokens = maxTokens;
  }

  /** Tokens held per sequence. */
  get lengths(): readonly number[] {
    return this.layers[0]?.lengths ?? new Array<number>(this.batchSize).fill(0);
  }

  /** Bytes every layer cache holds now (their allocated capacity). */
  get nbytes(): number {
    return this.layers.reduce((sum, layer) => sum + layer.nbytes, 0);
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  assertUsable(fn: string): void {
    if (this.#disposed) throw new BackendError({ fn, expected: 'a live model cache', got: 'one after dispose()' });
  }

  /** Rolls every layer back to `length` tokens per sequence (all, or one per sequence). */
  truncate(length: number | readonly number[]): void {
    for (const layer of this.layers) layer.truncate(length);
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const layer of this.layers) layer.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
