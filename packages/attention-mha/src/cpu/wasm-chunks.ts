// Where cpu-wasm-flash's tiles read one chunk of keys: K/V read in place (decode over resident
// K/V), token-major copies (decode streaming JavaScript arrays through cache-sized chunks), or
// packed head-major ([Hkv][keys][D], prefill: a tile's 64 key rows contiguous instead of
// Hkv·D·4 bytes apart, a stride that maps them onto a few L1 sets: 15% of the tile at Hkv 8,
// D 64), K then in transposed tiles where the K-tile score step is used.
//
// Axis letters: T keys, Hkv kv heads, D / Dv head dims.

import { BackendError, type wasm } from '@attnkit/tensor-core';
import type { AttentionProblem } from '../problem.js';
import { type ChunkSource, type Inboxes, packChunkJobs } from './wasm-prefill.js';
import type { QueueJob } from './wasm-queue.js';

/**
 * Prefill packs K in transposed tiles up to this head dim. The tile alone is 1.04× faster with
 * them at d = 64 and 128 (tile.bench.ts). End to end at d = 128 the duels of session 6 against
 * ORT were within their noise either way (load 2–3); in session 7, same process, 21 rounds
 * alternating, K rows took 1.05× / 1.095× the time of K tiles (CPU time 1.08× / 1.07×, load
 * 3.2–4). Beyond 128 unmeasured: K rows.
 */
const K_TILES_MAX_D = 128;

/** Where the tiles of one key chunk read K/V: the byte address of key t's row for kv head g, and the row strides. */
export interface ChunkLayout {
  k(g: number, t: number): number;
  v(g: number, t: number): number;
  readonly kStride: number;
  readonly vStride: number;
  /** K in transposed tiles (TILE_K_TRANSPOSED): tile calls start at whole tiles of the chunk. */
  readonly kTiles: boolean;
}

export interface ChunkSources {
  readonly k: Float32Array;
  readonly v: Float32Array | null;
  /** Byte offsets of K and V in the heap when they are read in place. */
  readonly inPlace: { readonly k: number; readonly v: number } | null;
  readonly kChunk: wasm.WasmRegion | null;
  readonly vChunk: wasm.WasmRegion | null;
  readonly chunkKeys: number;
  /** Token-major chunk copies (decode) rather than head-major packing (prefill). */
  readonly decode: boolean;
}

/**
 * Where the tiles read keys c0..c1−1 of batch b packed head-major (no row map), and the jobs that
 * pack them (on every thread: the first phase of the chunk's queue).
 */
export function packedChunk(heap: wasm.WasmHeap, p: AttentionProblem, b: number, c0: number, c1: number, src: ChunkSources, inboxes: Inboxes): { layout: ChunkLayout; jobs: QueueJob[] } {
  const { Hkv, D, Dv } = p;
  const { kChunk, vChunk, chunkKeys } = src;
  if (!kChunk) throw new BackendError({ fn: p.fn, expected: 'a K chunk region when K/V are not read in place', got: 'none' });
  const vWidth = src.v ? Dv : D;
  // K in transposed tiles for the K-tile score step, unless the values are read from the keys
  const kTiles = src.v !== null && vChunk !== null && D <= K_TILES_MAX_D;
  const sources: ChunkSource[] = [{ src: src.k, width: D, dst: kChunk, inbox: inboxes.get('k', 4 * chunkKeys * Hkv * D), transposed: kTiles }];
  if (src.v && vChunk) sources.push({ src: src.v, width: Dv, dst: vChunk, inbox: inboxes.get('v', 4 * chunkKeys * Hkv * Dv), transposed: false });
  const jobs = packChunkJobs(heap, p, b, c0, c1, sources, chunkKeys);
  const vRegion = vChunk ?? kChunk;
  const layout: ChunkLayout = {
    // with kTiles, t is a whole tile of the chunk (t − c0 a multiple of 64): its tile's address
    k: (g, t) => kChunk.byteOffset + 4 * ((g * chunkKeys + t - c0) * D),
    v: (g, t) => vRegion.byteOffset + 4 * ((g * chunkKeys + t - c0) * vWidth),
    kStride: 4 * D,
    vStride: 4 * vWidth,
    kTiles,
  };
  return { layout, jobs };
}

/** Makes keys c0..c1−1 of batch b readable by the tiles (copying or packing them unless in place). */
export function chunkLayout(heap: wasm.WasmHeap, p: AttentionProblem, b: number, c0: number, c1: number, src: ChunkSources): ChunkLayout {
  const { Hkv, D, Dv, T } = p;
  const vWidth = src.v ? Dv : D; // values from keys read the key row
  const kRow = Hkv * D;
  const vRow = Hkv * vWidth;
  if (src.inPlace) {
    const { k: kAt, v: vAt } = src.inPlace;
    return { k: (g, t) => kAt + 4 * ((b * T + t) * kRow + g * D), v: (g, t) => vAt + 4 * ((b * T + t) * vRow + g * vWidth), kStride: 4 * kRow, vStride: 4 * vRow, kTiles: false };
  }
  const { kChunk, vChunk, chunkKeys } = src;
  if (!kChunk) throw new BackendError({ fn: p.fn, expected: 'a K chunk region when K/V are not read in place', got: 'none' });
  const vRegion = vChunk ?? kChunk;
  if (src.decode) {
    copyKeys(heap, p, b, c0, c1, src.k, kRow, kChunk);
    if (src.v && vChunk) copyKeys(heap, p, b, c0, c1, src.v, vRow, vChunk);
    return {
      k: (g, t) => kChunk.byteOffset + 4 * ((t - c0) * kRow + g * D),
      v: (g, t) => vRegion.byteOffset + 4 * ((t - c0) * vRow + g * vWidth),
      kStride: 4 * kRow,
      vStride: 4 * vRow,
      kTiles: false,
    };
  }
  packKeys(heap, p, b, c0, c1, src.k, D, kChunk, chunkKeys);
  if (src.v && vChunk) packKeys(heap, p, b, c0, c1, src.v, Dv, vChunk, chunkKeys);
  return {
    k: (g, t) => kChunk.byteOffset + 4 * ((g * chunkKeys + t - c0) * D),
    v: (g, t) => vRegion.byteOffset + 4 * ((g * chunkKeys + t - c0) * vWidth),
    kStride: 4 * D,
    vStride: 4 * vWidth,
    kTiles: false,
  };
}

/** The storage row of logical key t of batch b, or −1 where a row map leaves it unmapped. */
function storageRow(p: AttentionProblem, b: number, t: number): number {
  const { rowMap, T, poolRows } = p;
  if (!rowMap) return b * T + t;
  const row = rowMap[b * T + t] as number;
  // entries of keys no query sees are not checked (or are −1): those rows are never read unmasked
  return row >= 0 && row < poolRows ? row : -1;
}

/** K or V rows of logical keys c0..c1−1 of batch b into `dst` head-major: [Hkv][chunkKeys][width]. */
function packKeys(heap: wasm.WasmHeap, p: AttentionProblem, b: number, c0: number, c1: number, src: Float32Array, width: number, dst: wasm.WasmRegion, chunkKeys: number): void {
  const f32 = heap.f32;
  const { Hkv } = p;
  for (let t = c0; t < c1; t++) {
    const row = storageRow(p, b, t);
    for (let g = 0; g < Hkv; g++) {
      const at = dst.index + (g * chunkKeys + t - c0) * width;
      if (row < 0) {
        f32.fill(0, at, at + width);
        continue;
      }
      const from = (row * Hkv + g) * width;
      for (let d = 0; d < width; d++) f32[at + d] = src[from + d] as number;
    }
  }
}

/** K or V rows of logical keys c0..c1−1 of batch b into the chunk region (all heads per row). */
function copyKeys(heap: wasm.WasmHeap, p: AttentionProblem, b: number, c0: number, c1: number, src: Float32Array, rowFloats: number, dst: wasm.WasmRegion): void {
  const f32 = heap.f32;
  const { rowMap, T } = p;
  if (!rowMap) {
    f32.set(src.subarray((b * T + c0) * rowFloats, (b * T + c1) * rowFloats), dst.index);
    return;
  }
  for (let t = c0; t < c1; t++) {
    const row = storageRow(p, b, t);
    const at = dst.index + (t - c0) * rowFloats;
    if (row >= 0) f32.set(src.subarray(row * rowFloats, (row + 1) * rowFloats), at);
    else f32.fill(0, at, at + rowFloats);
  }
}
