// The prefill side of cpu-wasm-flash around the tiles, as jobs of the tiles' own work queue
// (wasm-queue.ts), so that a whole prefill is one hand-off to the workers and everything runs on
// every thread: queries scaled into row order and the softmax state filled (`copyRows`, `fill`)
// and each K/V chunk packed head-major (`copyRows`, `transposeKeyTiles`), then the row blocks'
// tiles, then out = acc / l (`finishRows`), each job signalling its kv head's dependency counter
// (a head's tiles wait for its staging and packing, its finish for its tiles: wasm-flash.ts).
// What the calling thread does alone is small:
// building the tables, and the bulk copy of an operand that is a JavaScript array into the heap
// (one `set`). In JavaScript these loops cost ~10% of a prefill while the workers waited; as
// separate parallel steps, each hand-off left a thread idle while the other woke or finished.
//
// Axis letters: S queries, T keys, Hq / Hkv heads, G = Hq/Hkv, D / Dv head dims.

import type { wasm } from '@attnkit/tensor-core';
import type { AttentionProblem } from '../problem.js';
import { type QueueJob, f32Bits, plumbingCall } from './wasm-queue.js';
import { CallKind } from './wasm-rows.js';
import type { StateRegions } from './wasm-state.js';
import { LOG2_SCORES, TILE_KEYS } from './wasm-tile.js';

/** Pieces per operand of the plumbing's phases: enough that two threads end within a small piece of each other. */
const PIECES = 8;

/** The row ranges [r0, r1) that split `rows` into `parts` near-equal pieces (empty ones left out). */
function rowParts(rows: number, parts: number): [number, number][] {
  return Array.from({ length: parts }, (_, t): [number, number] => [Math.floor((rows * t) / parts), Math.floor((rows * (t + 1)) / parts)]).filter(([a, z]) => z > a);
}

/** The byte address of `array[from]` in the heap: in place when the array lives there, else copied into `inbox` first. */
function heapAddress(heap: wasm.WasmHeap, array: Float32Array, from: number, to: number, inbox: () => wasm.WasmRegion): number {
  const at = heap.byteOffsetOf(array);
  if (at !== null) return at + 4 * from;
  const region = inbox();
  heap.f32.set(array.subarray(from, to), region.index);
  return region.byteOffset;
}

/** Lazily allocated scratch regions of one call, released together. */
export class Inboxes {
  readonly #regions = new Map<string, wasm.WasmRegion>();
  constructor(
    private readonly heap: wasm.WasmHeap,
    private readonly fn: string,
  ) {}
  /** The region named `name` of at least `bytes` (the first request's size: ask with the largest). */
  get(name: string, bytes: number): () => wasm.WasmRegion {
    return () => {
      let r = this.#regions.get(name);
      if (!r) {
        r = this.heap.alloc(bytes, this.fn);
        this.#regions.set(name, r);
      }
      return r;
    };
  }
  release(): void {
    for (const r of this.#regions.values()) r.release();
    this.#regions.clear();
  }
}

/** A plumbing job for kv head g (its work estimated by the bytes it writes), signalling g's dependency counter. */
const plumbing = (g: number, calls: number[][], bytes: number): QueueJob => ({ calls, madds: bytes / 4, head: g, signal: g });

/**
 * Jobs that put the queries of batch b, scaled (by scale · LOG2_SCORES), in row order
 * [g][i][h within group], and fill a fresh softmax state (m −∞, l 0, acc 0); each job signals
 * its kv head's dependency counter (the head's tiles wait for it).
 */
export function stagePrefillJobs(heap: wasm.WasmHeap, p: AttentionProblem, b: number, q: Float32Array, state: StateRegions, inboxes: Inboxes): QueueJob[] {
  const { S, Hq, Hkv, D, Dv } = p;
  const scale = f32Bits(p.scale * LOG2_SCORES);
  const G = Hq / Hkv;
  const n = S * Hq * D;
  const src = heapAddress(heap, q, b * n, (b + 1) * n, inboxes.get('q', 4 * n));
  const jobs: QueueJob[] = [];
  const parts = rowParts(S, Math.ceil(PIECES / Hq));
  for (let h = 0; h < Hq; h++) {
    const g = Math.floor(h / G);
    const hh = h % G;
    for (const [r0, r1] of parts) {
      const dst = state.qs.byteOffset + 4 * ((g * S + r0) * G + hh) * D;
      jobs.push(plumbing(g, [plumbingCall(CallKind.copyRows, src + 4 * (r0 * Hq + h) * D, 4 * Hq * D, dst, 4 * G * D, r1 - r0, 4 * D, scale)], 4 * (r1 - r0) * D));
    }
  }
  // kv head g's state rows are [g·S·G, (g + 1)·S·G)
  const rows = S * G;
  for (let g = 0; g < Hkv; g++) {
    const r0 = g * rows;
    const fills = [
      plumbingCall(CallKind.fill, state.acc.byteOffset + 4 * r0 * Dv, 4 * rows * Dv, 0),
      plumbingCall(CallKind.fill, state.m.byteOffset + 4 * r0, 4 * rows, f32Bits(-Infinity)),
      plumbingCall(CallKind.fill, state.l.byteOffset + 4 * r0, 4 * rows, 0),
    ];
    jobs.push(plumbing(g, fills, 4 * rows * (Dv + 2)));
  }
  return jobs;
}

/** One operand of a prefill chunk: its token-major rows and where they go. */
export interface ChunkSource {
  readonly src: Float32Array;
  readonly width: number;
  readonly dst: wasm.WasmRegion;
  readonly inbox: () => wasm.WasmRegion;
  /** In transposed tiles ([Hkv][chunkKeys / 64][width][64], `transposeKeyTiles`) rather than rows. */
  readonly transposed: boolean;
}

/**
 * Jobs that pack the K and V rows of keys c0..c1−1 of batch b head-major into their `dst`
 * ([Hkv][chunkKeys][width], or in transposed tiles), from token-major storage without a row map,
 * each signalling its kv head's dependency counter. c0 is a multiple of 64.
 */
export function packChunkJobs(heap: wasm.WasmHeap, p: AttentionProblem, b: number, c0: number, c1: number, sources: readonly ChunkSource[], chunkKeys: number): QueueJob[] {
  const { Hkv, T } = p;
  const pieces = Math.ceil(PIECES / Hkv);
  const parts = rowParts(c1 - c0, pieces);
  // a transposed operand splits at whole tiles (a tile is written by one job)
  const tileParts = rowParts(Math.ceil((c1 - c0) / TILE_KEYS), pieces).map(([a, z]): [number, number] => [a * TILE_KEYS, Math.min(c1 - c0, z * TILE_KEYS)]);
  const jobs: QueueJob[] = [];
  for (const { src, width, dst, inbox, transposed } of sources) {
    const row = Hkv * width;
    const at = heapAddress(heap, src, (b * T + c0) * row, (b * T + c1) * row, inbox);
    for (let g = 0; g < Hkv; g++) {
      for (const [r0, r1] of transposed ? tileParts : parts) {
        const from = at + 4 * (r0 * row + g * width);
        const to = dst.byteOffset + 4 * (g * chunkKeys + r0) * width;
        const call = transposed
          ? plumbingCall(CallKind.transposeKeyTiles, from, 4 * row, to, r1 - r0, 4 * width)
          : plumbingCall(CallKind.copyRows, from, 4 * row, to, 4 * width, r1 - r0, 4 * width, f32Bits(1));
        jobs.push(plumbing(g, [call], 4 * (r1 - r0) * width));
      }
    }
  }
  return jobs;
}

/** Where the finish writes batch b's rows, and what is left for the calling thread after the queue ran. */
export interface PrefillFinish {
  /** The finish jobs of each kv head (give them a wait for its tiles). */
  readonly jobs: readonly QueueJob[][];
  /** Copies a staged output into `out` and computes lse (after the finish jobs ran). */
  complete(): void;
}

/** out = acc / l for batch b (zeros where no key was visible), and lse = m · ln 2 + ln l (m in log2 units). */
export function finishPrefillJobs(heap: wasm.WasmHeap, p: AttentionProblem, b: number, state: StateRegions, out: Float32Array, lse: Float32Array | null, inboxes: Inboxes): PrefillFinish {
  const { S, Hq, Hkv, Dv } = p;
  const G = Hq / Hkv;
  const n = S * Hq * Dv;
  const resident = heap.byteOffsetOf(out);
  const staged = resident === null ? inboxes.get('out', 4 * n)() : null;
  const dst = resident !== null ? resident + 4 * b * n : (staged as wasm.WasmRegion).byteOffset;
  const jobs: QueueJob[][] = Array.from({ length: Hkv }, () => []);
  const parts = rowParts(S, Math.ceil(PIECES / Hq));
  for (let h = 0; h < Hq; h++) {
    const g = Math.floor(h / G);
    for (const [r0, r1] of parts) {
      const row = (g * S + r0) * G + (h % G);
      jobs[g]?.push(plumbing(g, [plumbingCall(CallKind.finishRows, state.acc.byteOffset + 4 * row * Dv, 4 * G * Dv, state.l.byteOffset + 4 * row, 4 * G, dst + 4 * (r0 * Hq + h) * Dv, 4 * Hq * Dv, r1 - r0, 4 * Dv)], 4 * (r1 - r0) * Dv));
    }
  }
  const complete = (): void => {
    const f32 = heap.f32;
    if (staged) out.set(f32.subarray(staged.index, staged.index + n), b * n);
    if (!lse) return;
    for (let g = 0; g < Hkv; g++) {
      for (let i = 0; i < S; i++) {
        for (let hh = 0; hh < G; hh++) {
          const row = (g * S + i) * G + hh;
          const sum = f32[state.l.index + row] as number;
          lse[(b * S + i) * Hq + g * G + hh] = sum !== 0 ? (f32[state.m.index + row] as number) * Math.LN2 + Math.log(sum) : -Infinity;
        }
      }
    }
  };
  return { jobs, complete };
}
