// Decode's side of cpu-wasm-flash over K/V read in place: the key range is cut into pieces
// (≤ DECODE_PIECE_KEYS) that are jobs of the threads' shared queue, each into its own partial
// softmax state, merged after (l and acc rescaled by e^(m − M)). A piece every row sees whole is
// one decodeSweep call (token order, all kv heads per group of 4 keys: wasm-sweep.ts); one a mask
// edge crosses (or one kv head's) goes tile by tile, every kv head of a tile in turn, after one
// read of the tile's K/V rows in memory order.
//
// Axis letters: S queries, T keys, Hq / Hkv heads, G = Hq/Hkv, D / Dv head dims.

import type { AbortCheckpoint, wasm } from '@attnkit/tensor-core';
import { type RowBlock, type TileCallContext, blockTileCalls, isEdge } from './wasm-blocks.js';
import { type QueueJob, runQueue } from './wasm-queue.js';
import { type PartialStates, type StateRegions, mergeState } from './wasm-state.js';
import { TILE_KEYS } from './wasm-tile.js';

/** Query rows per kv head up to which decode sweeps whole pieces in token order (wasm-sweep.ts). */
const SWEEP_MAX_ROWS = 8;
/** The most keys of one decode job (a piece of the key range on the threads' shared queue). */
const DECODE_PIECE_KEYS = 1024;

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/**
 * Keys per decode piece over `threads` threads: about 4 pieces per thread for short caches, at
 * most DECODE_PIECE_KEYS (a piece's K/V rows stay in L2 while its heads read them; 64 pieces at
 * T = 64K), whole tiles.
 */
export function decodePieceKeys(T: number, threads: number): number {
  return Math.max(TILE_KEYS, Math.min(DECODE_PIECE_KEYS, roundUp(Math.ceil(T / (4 * threads)), TILE_KEYS)));
}

/** Where one decode call's pieces run and what they share. */
export interface DecodeRun {
  readonly heap: wasm.WasmHeap;
  readonly kernel: wasm.WasmKernelModule;
  readonly pool: wasm.WasmThreadPool | null;
  readonly state: StateRegions;
  readonly parts: PartialStates;
  readonly pieceKeys: number;
  /** Each thread's score block: thread t's at scores + t · scoreBytes. */
  readonly scores: number;
  readonly scoreBytes: number;
  readonly checkpoint: AbortCheckpoint;
}

/**
 * Keys [c0, c1) of every row block, in pieces on the shared queue (not a static split per
 * thread, which waited for a starved thread's half), each into its own partial state, then
 * merged into the rows' own.
 */
export async function runDecodePieces(run: DecodeRun, ctx: TileCallContext, blocks: readonly RowBlock[], c0: number, c1: number): Promise<void> {
  const { p, layout } = ctx;
  const { S, Hkv, D, Dv } = p;
  const G = p.Hq / Hkv;
  const { parts, pieceKeys } = run;
  const jobs: QueueJob[] = [];
  const sweeps: QueueJob[] = [];
  // The sweep takes the one row block of all S positions (rows of kv head g: [g·R, (g + 1)·R)
  // of q and the state). Not with one kv head (its rows are contiguous already: MLA-like 16
  // heads × 576 was 15% slower swept) nor with more than SWEEP_MAX_ROWS rows per kv head (each
  // 4-key call redoes every row's softmax step: at G = 16 the sweep only tied the tiles at 64K
  // and lost on a 512-key window).
  const R = S * G;
  const whole = blocks.length === 1 && blocks[0]?.i0 === 0 && blocks[0].i1 === S && Hkv > 1 && R <= SWEEP_MAX_ROWS ? blocks[0] : undefined;
  const kHead = layout.k(1, c0) - layout.k(0, c0);
  const vHead = layout.v(1, c0) - layout.v(0, c0);
  let pieces = 0;
  for (let from = c0; from < c1; from += pieceKeys) {
    const to = Math.min(c1, from + pieceKeys);
    const part = parts.pointers(pieces++);
    if (whole && !isEdge(whole, from, to)) {
      const sweep = [ctx.qs, R, layout.k(0, from), layout.kStride, kHead, layout.v(0, from), layout.vStride, vHead, from, to, ctx.meta, part.m, part.l, part.acc, 0, Hkv];
      sweeps.push({ calls: [sweep], madds: (to - from) * Hkv * R * (D + Dv), head: 0 });
      continue;
    }
    const calls: number[][] = [];
    let keys = 0;
    for (let t = from; t < to; t += TILE_KEYS) {
      const tEnd = Math.min(to, t + TILE_KEYS);
      // first read the tile's K/V rows of all heads in memory order (flashSpan with R = 0): the
      // heads' tiles below then find them in L2 instead of each missing on 64 rows 4 KiB apart
      // (a stride no prefetcher follows across pages): decode 1.5x
      calls.push([0, 0, D, layout.k(0, t), layout.kStride, layout.v(0, t), layout.vStride, Dv, t, tEnd, 0, 0, 0, 0, 0, 0]);
      for (let g = 0; g < Hkv; g++) {
        for (const blk of blocks) {
          const tile = blockTileCalls(ctx, g, blk, 0, t, tEnd, part);
          calls.push(...tile.calls);
          keys += tile.keys * (blk.i1 - blk.i0) * G;
        }
      }
    }
    // one K/V stream: a single `head`, so the queue keeps the pieces in key order
    if (calls.length > 0) jobs.push({ calls, madds: keys * (D + Dv), head: 0 });
  }
  const { heap, kernel, pool, scores, scoreBytes, checkpoint } = run;
  await runQueue(heap, kernel, pool, [sweeps], scores, scoreBytes, checkpoint, p.fn, 'sweepQueue');
  await runQueue(heap, kernel, pool, [jobs], scores, scoreBytes, checkpoint, p.fn);
  // a piece no row saw a key of left its state empty, which merges as nothing
  for (let i = 0; i < pieces; i++) mergeState(heap, p, run.state, parts.pointers(i));
}
