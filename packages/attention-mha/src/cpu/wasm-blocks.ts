// The row blocks of cpu-wasm-flash's dense forms and the tile calls (flashSpan argument lists)
// of one block over a span of keys: shared by prefill (wasm-flash.ts: one job per row block) and
// decode (wasm-decode.ts: pieces of the key range).
//
// Axis letters: S queries, T keys, Hq / Hkv heads, G = Hq/Hkv, D / Dv head dims.

import type { wasm } from '@attnkit/tensor-core';
import type { AttentionProblem } from '../problem.js';
import type { ChunkLayout } from './wasm-chunks.js';
import type { StatePointers } from './wasm-state.js';
import { TILE_EDGE, TILE_KEYS, TILE_K_TRANSPOSED } from './wasm-tile.js';

/** One block of query rows: positions i0..i1−1 and the key ranges any of its rows can see. */
export interface RowBlock {
  readonly i0: number;
  readonly i1: number;
  /** Keys [0, sinks) and [lo, hi) cover every visible key of every row of the block. */
  readonly sinks: number;
  readonly lo: number;
  readonly hi: number;
  /** Keys every row of the block sees: [0, allSinks) and [allLo, allHi) (tiles inside need no mask on P·V). */
  readonly allSinks: number;
  readonly allLo: number;
  readonly allHi: number;
}

/** Whether keys [t, end) are not all seen by every row of the block (a mask edge runs through them). */
export function isEdge(blk: RowBlock, t: number, end: number): boolean {
  return !(end <= blk.allSinks || (t >= blk.allLo && end <= blk.allHi));
}

/** Each row's visible key ranges (into `meta`) and the row blocks of batch b with their spans. */
export function denseRowBlocks(heap: wasm.WasmHeap, p: AttentionProblem, len: number, meta: wasm.WasmRegion, positionsPerBlock: number): RowBlock[] {
  const { S, Hq, Hkv, causal, window, sinkTokens } = p;
  const G = Hq / Hkv;
  const i32 = heap.i32;
  const blocks: RowBlock[] = [];
  for (let i0 = 0; i0 < S; i0 += positionsPerBlock) {
    const i1 = Math.min(S, i0 + positionsPerBlock);
    let lo = Infinity;
    let hi = 0;
    let sinks = 0;
    let allLo = 0;
    let allHi = Infinity;
    let allSinks = Infinity;
    for (let i = i0; i < i1; i++) {
      const pos = len - S + i; // bottom-right: the S queries end the sequence
      const rowHi = causal ? Math.min(pos + 1, len) : len;
      const rowLo = causal && window !== null ? Math.max(0, pos - window + 1) : 0;
      const sinkEnd = Math.min(sinkTokens, rowLo);
      for (let hh = 0; hh < G; hh++) {
        const at = meta.index + 3 * (i * G + hh);
        i32[at] = sinkEnd;
        i32[at + 1] = rowLo;
        i32[at + 2] = Math.max(rowHi, rowLo);
      }
      if (rowHi > rowLo) {
        lo = Math.min(lo, rowLo);
        hi = Math.max(hi, rowHi);
      }
      sinks = Math.max(sinks, sinkEnd);
      allLo = Math.max(allLo, rowLo);
      allHi = Math.min(allHi, rowHi);
      allSinks = Math.min(allSinks, sinkEnd);
    }
    blocks.push({ i0, i1, sinks, lo: lo === Infinity ? 0 : lo, hi, allSinks, allLo, allHi });
  }
  return blocks;
}

/** What the tile calls of one key chunk share: where the queries, the row meta and K/V are. */
export interface TileCallContext {
  readonly p: AttentionProblem;
  /** Byte offsets of the staged queries and the row meta in the heap. */
  readonly qs: number;
  readonly meta: number;
  readonly layout: ChunkLayout;
  /** The chunk's first key (K tiles start at whole tiles counted from it). */
  readonly c0: number;
}

/**
 * The tile calls of row block `blk` of kv head g over keys [from, to) of the chunk, scoring into
 * `s` and carrying the softmax state at `part` (the rows' own, or a split-key partial one), and
 * the number of keys they cover.
 */
export function blockTileCalls(ctx: TileCallContext, g: number, blk: RowBlock, s: number, from: number, to: number, part: StatePointers): { calls: number[][]; keys: number } {
  const { p, layout, c0 } = ctx;
  const { S, D, Dv } = p;
  const G = p.Hq / p.Hkv;
  const calls: number[][] = [];
  let keys = 0;
  const R = (blk.i1 - blk.i0) * G;
  const row0 = (g * S + blk.i0) * G;
  // keys every row of the block sees take the plain P·V; the rest of a span (tiles that some row
  // sees only in part) the per-row masked one, so a hidden key's NaN stays out
  const push = (start: number, end: number, edge: boolean): void => {
    if (start >= end) return;
    keys += end - start;
    calls.push([
      ctx.qs + 4 * row0 * D,
      R,
      D,
      layout.k(g, start),
      layout.kStride,
      layout.v(g, start),
      layout.vStride,
      Dv,
      start,
      end,
      ctx.meta + 12 * blk.i0 * G,
      part.m + 4 * row0,
      part.l + 4 * row0,
      part.acc + 4 * row0 * Dv,
      s,
      (edge ? TILE_EDGE : 0) | (layout.kTiles ? TILE_K_TRANSPOSED : 0),
    ]);
  };
  // K in transposed tiles: a span starts at a whole tile of the chunk (keys before the block's lo
  // in it are masked like any hidden key: an edge span)
  const tileStart = (t: number): number => (layout.kTiles ? c0 + Math.floor((t - c0) / TILE_KEYS) * TILE_KEYS : t);
  const span = (lo: number, hi: number): void => {
    const start = tileStart(Math.max(lo, from));
    const end = Math.min(hi, to);
    if (start >= end) return;
    if (!isEdge(blk, start, end)) return push(start, end, false);
    // the whole tiles (counted from `start`) inside [allLo, allHi) need no mask
    const a = start + Math.ceil(Math.max(0, blk.allLo - start) / TILE_KEYS) * TILE_KEYS;
    const z = a + Math.floor(Math.max(0, Math.min(end, blk.allHi) - a) / TILE_KEYS) * TILE_KEYS;
    if (z <= a) return push(start, end, true);
    push(start, a, true);
    push(a, z, false);
    push(z, end, true);
  };
  const sinkPart = Math.min(blk.sinks, blk.lo);
  // the sinks' span, then [lo, hi) — as one span (the mask hides the keys between) when rounding
  // lo down to its tile would reach back into the sinks'
  if (sinkPart > 0 && tileStart(Math.max(blk.lo, from)) < sinkPart) span(0, blk.hi);
  else {
    if (sinkPart > 0) span(0, sinkPart);
    span(blk.lo, blk.hi);
  }
  return { calls, keys };
}
