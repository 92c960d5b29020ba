// Where the queries sit. Bottom-right alignment (spec §1): the S new queries of sequence b end
// it, so query i is at absolute position p = len_b − S + i. Prefill (S = T), decode (S = 1)
// and chunked prefill are the same rule. The host builds the small per-chunk masks from this.

import { type Backend, type Tensor, tensor } from '@attnkit/tensor-core';
import { type ResolvedNSAConfig, visibleCompressedBlocks } from './config.js';

export class QueryPositions {
  /** Whether every sequence has the same length, so one mask serves the whole batch. */
  readonly uniform: boolean;
  readonly maxLength: number;

  constructor(
    readonly lengths: readonly number[],
    readonly queries: number,
  ) {
    this.uniform = lengths.every((len) => len === lengths[0]);
    this.maxLength = Math.max(0, ...lengths);
  }

  get batch(): number {
    return this.lengths.length;
  }

  /** Absolute position of query i of sequence b. */
  at(b: number, i: number): number {
    return (this.lengths[b] as number) - this.queries + i;
  }

  /** The largest position of a query before i1, over every sequence (the last query of a chunk ending at i1). */
  maxIn(i1: number): number {
    return this.maxLength - this.queries + i1 - 1;
  }

  /** The smallest position of a query from i0 on, over every sequence (the first query of a chunk starting at i0). */
  minIn(i0: number): number {
    return Math.min(...this.lengths) - this.queries + i0;
  }
}

/**
 * Additive mask [Bm, 1, Sc, 1, Nc] (Bm = 1 when lengths agree) over the compressed blocks of
 * queries i0..i1−1: 0 where block i is complete by p (i·d + l − 1 ≤ p), −∞ elsewhere.
 */
export function compressedVisibilityMask(backend: Backend, pos: QueryPositions, i0: number, i1: number, nc: number, config: ResolvedNSAConfig): Tensor {
  const bm = pos.uniform ? 1 : pos.batch;
  const sc = i1 - i0;
  const mask = new Float32Array(bm * sc * nc);
  for (let b = 0; b < bm; b++) {
    for (let i = i0; i < i1; i++) {
      const visible = visibleCompressedBlocks(pos.at(b, i), config);
      const row = (b * sc + (i - i0)) * nc;
      mask.fill(-Infinity, row + Math.min(visible, nc), row + nc);
    }
  }
  return tensor(backend, mask, [bm, 1, sc, 1, nc]);
}

/**
 * Additive mask [Bm, 1, Sc, Ns] over the selection blocks of queries i0..i1−1: −∞ for blocks
 * that start after p (j > ⌊p/l′⌋), +∞ for forced ones (j < nInit, or ⌊p/l′⌋ − nLocal < j ≤ ⌊p/l′⌋),
 * 0 for the others. Adding +∞ makes forced blocks tie at the top, where top-k keeps the
 * lower index first.
 */
export function selectionMask(backend: Backend, pos: QueryPositions, i0: number, i1: number, ns: number, config: ResolvedNSAConfig): Tensor {
  const bm = pos.uniform ? 1 : pos.batch;
  const sc = i1 - i0;
  const mask = new Float32Array(bm * sc * ns);
  for (let b = 0; b < bm; b++) {
    for (let i = i0; i < i1; i++) {
      const current = Math.floor(pos.at(b, i) / config.slcBlock);
      const row = (b * sc + (i - i0)) * ns;
      for (let j = 0; j < ns; j++) {
        if (j > current) mask[row + j] = -Infinity;
        else if (j < config.nInit || j > current - config.nLocal) mask[row + j] = Infinity;
      }
    }
  }
  return tensor(backend, mask, [bm, 1, sc, ns]);
}
