// The prefill side of cpu-wasm-flash around the tiles, all of it on every thread: queries scaled
// into row order and K/V chunks packed head-major (`copyRows`), the row blocks' tile calls
// through the shared work queue (`flashQueue`), out = acc / l (`finishRows`). What the calling
// thread does alone is small: building the tables, and the bulk copy of an operand that is a
// JavaScript array into the heap (one `set`). In JavaScript these loops cost ~10% of a prefill
// while the workers waited (the queries, the K/V packing and the finish, each ~3–4 ms at
// N = 2048, 8 heads, d = 64), and the rounds of fixed per-thread lists lost the rest to the
// imbalance of a causal triangle's row blocks and to the workers' late starts.
//
// Axis letters: S queries, T keys, Hq / Hkv heads, G = Hq/Hkv, D / Dv head dims.

import { type AbortCheckpoint, BackendError, wasm } from '@attnkit/tensor-core';
import type { AttentionProblem } from '../problem.js';
import type { StateRegions } from './wasm-state.js';
import { CALL_BYTES, JOB_BYTES } from './wasm-rows.js';
import { LOG2_SCORES, TILE_KEYS } from './wasm-tile.js';

type Pool = wasm.WasmThreadPool | null;

/**
 * Tile work per round between two of the calling thread's abort checkpoints, in multiply-adds:
 * ~10–25 ms on two threads (the workers go on from round to round without waiting for them).
 */
const ROUND_MADDS = 2 ** 28;

/** The row ranges [r0, r1) that split `rows` into `parts` near-equal pieces. */
function rowParts(rows: number, parts: number): [number, number][] {
  return Array.from({ length: parts }, (_, t): [number, number] => [Math.floor((rows * t) / parts), Math.floor((rows * (t + 1)) / parts)]);
}

/** Runs export `fn` of the tile module on each thread's list (or every list here, without a pool). */
async function runLists(kernel: wasm.WasmKernelModule, pool: Pool, fn: string, lists: number[][][]): Promise<void> {
  if (pool && pool.size > 1) return pool.run(kernel, fn, lists);
  const f = kernel.instance.exports[fn];
  if (typeof f !== 'function') throw new BackendError({ fn: 'cpu-wasm-flash', expected: `an exported function ${fn} in the tile module`, got: typeof f });
  for (const list of lists) for (const args of list) Reflect.apply(f, undefined, args);
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

/** The queries of batch b scaled (by scale · LOG2_SCORES) in row order [g][i][h within group], and a fresh softmax state. */
export async function stagePrefillQueries(
  heap: wasm.WasmHeap,
  kernel: wasm.WasmKernelModule,
  pool: Pool,
  p: AttentionProblem,
  b: number,
  q: Float32Array,
  state: StateRegions,
  inboxes: Inboxes,
): Promise<void> {
  const { S, Hq, Hkv, D, Dv } = p;
  const scale = p.scale * LOG2_SCORES;
  const G = Hq / Hkv;
  const n = S * Hq * D;
  const src = heapAddress(heap, q, b * n, (b + 1) * n, inboxes.get('q', 4 * n));
  const parts = rowParts(S, pool?.size ?? 1);
  const lists = parts.map(([r0, r1]) =>
    Array.from({ length: Hq }, (_, h) => {
      const g = Math.floor(h / G);
      const hh = h % G;
      return [src + 4 * (r0 * Hq + h) * D, 4 * Hq * D, state.qs.byteOffset + 4 * ((g * S + r0) * G + hh) * D, 4 * G * D, r1 - r0, 4 * D, scale];
    }),
  );
  const f32 = heap.f32;
  f32.fill(0, state.acc.index, state.acc.index + S * Hq * Dv);
  f32.fill(-Infinity, state.m.index, state.m.index + S * Hq);
  f32.fill(0, state.l.index, state.l.index + S * Hq);
  await runLists(kernel, pool, 'copyRows', lists);
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
 * K and V rows of keys c0..c1−1 of batch b head-major into their `dst` ([Hkv][chunkKeys][width],
 * or in transposed tiles), from token-major storage without a row map. c0 is a multiple of 64.
 */
export async function packPrefillChunk(heap: wasm.WasmHeap, kernel: wasm.WasmKernelModule, pool: Pool, p: AttentionProblem, b: number, c0: number, c1: number, sources: readonly ChunkSource[], chunkKeys: number): Promise<void> {
  const { Hkv, T } = p;
  const threads = pool?.size ?? 1;
  const parts = rowParts(c1 - c0, threads);
  // a transposed operand splits at whole tiles (a tile is written by one thread)
  const tiles = Math.ceil((c1 - c0) / TILE_KEYS);
  const tileParts = rowParts(tiles, threads).map(([a, z]): [number, number] => [a * TILE_KEYS, Math.min(c1 - c0, z * TILE_KEYS)]);
  const rowLists: number[][][] = parts.map(() => []);
  const tileLists: number[][][] = parts.map(() => []);
  for (const { src, width, dst, inbox, transposed } of sources) {
    const row = Hkv * width;
    const at = heapAddress(heap, src, (b * T + c0) * row, (b * T + c1) * row, inbox);
    (transposed ? tileParts : parts).forEach(([r0, r1], t) => {
      if (r1 <= r0) return;
      for (let g = 0; g < Hkv; g++) {
        const from = at + 4 * (r0 * row + g * width);
        const to = dst.byteOffset + 4 * (g * chunkKeys + r0) * width;
        if (transposed) tileLists[t]?.push([from, 4 * row, to, r1 - r0, 4 * width]);
        else rowLists[t]?.push([from, 4 * row, to, 4 * width, r1 - r0, 4 * width, 1]);
      }
    });
  }
  if (tileLists.some((l) => l.length > 0)) await runLists(kernel, pool, 'transposeKeyTiles', tileLists);
  if (rowLists.some((l) => l.length > 0)) await runLists(kernel, pool, 'copyRows', rowLists);
}

/** out = acc / l for batch b (zeros where no key was visible), and lse = m · ln 2 + ln l (m in log2 units). */
export async function finishPrefill(
  heap: wasm.WasmHeap,
  kernel: wasm.WasmKernelModule,
  pool: Pool,
  p: AttentionProblem,
  b: number,
  state: StateRegions,
  out: Float32Array,
  lse: Float32Array | null,
  inboxes: Inboxes,
): Promise<void> {
  const { S, Hq, Hkv, Dv } = p;
  const G = Hq / Hkv;
  const n = S * Hq * Dv;
  const resident = heap.byteOffsetOf(out);
  const staged = resident === null ? inboxes.get('out', 4 * n)() : null;
  const dst = resident !== null ? resident + 4 * b * n : (staged as wasm.WasmRegion).byteOffset;
  const parts = rowParts(S, pool?.size ?? 1);
  const lists = parts.map(([r0, r1]) =>
    Array.from({ length: Hq }, (_, h) => {
      const g = Math.floor(h / G);
      const row = (g * S + r0) * G + (h % G);
      return [state.acc.byteOffset + 4 * row * Dv, 4 * G * Dv, state.l.byteOffset + 4 * row, 4 * G, dst + 4 * (r0 * Hq + h) * Dv, 4 * Hq * Dv, r1 - r0, 4 * Dv];
    }),
  );
  await runLists(kernel, pool, 'finishRows', lists);
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
}

/** One row block's tile calls (flashSpan argument lists, run in order), their multiply-adds and kv head. */
export interface TileJob {
  readonly calls: readonly (readonly number[])[];
  readonly madds: number;
  /** The kv head whose K/V the calls read. */
  readonly head: number;
}

/**
 * Runs `jobs` on every thread through the shared queue, in rounds of ~ROUND_MADDS with an abort
 * checkpoint between. Order: kv head by kv head (consecutive jobs read the same K/V, which stays
 * in L2/L3 while both threads stream it: a span over K/V that has gone cold costs 12–16% more),
 * each round's jobs longest first (the last jobs taken are the shortest, so the threads finish
 * together). Thread t scores into `scores + t · scoreBytes`. The calls are flashSpan's, or with
 * `queueName` 'sweepQueue' decodeSweep's (wasm-sweep.ts).
 */
export async function runTileJobs(
  heap: wasm.WasmHeap,
  kernel: wasm.WasmKernelModule,
  pool: Pool,
  jobs: readonly TileJob[],
  scores: number,
  scoreBytes: number,
  checkpoint: AbortCheckpoint,
  fn: string,
  queueName: 'flashQueue' | 'sweepQueue' = 'flashQueue',
): Promise<void> {
  if (jobs.length === 0) return;
  const byHead = [...jobs].sort((a, b) => a.head - b.head || b.madds - a.madds);
  const sorted: TileJob[] = [];
  const rounds: [number, number][] = [];
  for (let start = 0, sum = 0, i = 0; i < byHead.length; i++) {
    sum += (byHead[i] as TileJob).madds;
    if (sum >= ROUND_MADDS || i === byHead.length - 1) {
      sorted.push(...byHead.slice(start, i + 1).sort((a, b) => b.madds - a.madds));
      rounds.push([start, i + 1]);
      start = i + 1;
      sum = 0;
    }
  }
  const callCount = sorted.reduce((s, j) => s + j.calls.length, 0);
  const table = heap.alloc(CALL_BYTES * callCount + JOB_BYTES * sorted.length + 4 * rounds.length, fn);
  try {
    const i32 = heap.i32;
    const callsAt = table.byteOffset;
    const jobsAt = callsAt + CALL_BYTES * callCount;
    const countersAt = jobsAt + JOB_BYTES * sorted.length;
    let c = 0;
    sorted.forEach((job, j) => {
      i32[jobsAt / 4 + 2 * j] = c;
      for (const args of job.calls) i32.set(args, (callsAt + CALL_BYTES * c++) / 4);
      i32[jobsAt / 4 + 2 * j + 1] = c;
    });
    const threads = pool?.size ?? 1;
    const roundArgs = (r: number, t: number): number[] => {
      const [from, to] = rounds[r] as [number, number];
      return [callsAt, jobsAt + JOB_BYTES * from, to - from, countersAt + 4 * r, scores + t * scoreBytes];
    };
    for (let r = 0; r < rounds.length; r++) i32[countersAt / 4 + r] = 0;
    if (!pool || threads < 2) {
      for (let r = 0; r < rounds.length; r++) {
        await runLists(kernel, null, queueName, [[roundArgs(r, 0)]]);
        await checkpoint.check();
      }
      return;
    }
    // The workers get every round at once and go from one round's queue to the next without a
    // hand-off (one per round measured ~10% of a worker's time idle at N = 2048, d = 128); the
    // calling thread takes its share round by round, with the abort checkpoint between. On abort
    // it empties the queues that are left (each counter past its count), so the workers stop
    // after their current job, and waits for them before the table goes.
    // (a worker's failure is held until the calling thread's rounds are done: not unhandled meanwhile)
    const workers = pool.run(kernel, queueName, [[], ...Array.from({ length: threads - 1 }, (_, w) => rounds.map((_, r) => roundArgs(r, w + 1)))]).then(
      () => null,
      (e: unknown) => ({ error: e }),
    );
    const queue = wasm.exported<(...args: number[]) => void>(kernel.instance, queueName);
    try {
      for (let r = 0; r < rounds.length; r++) {
        queue(...roundArgs(r, 0));
        await checkpoint.check();
      }
    } catch (e) {
      rounds.forEach(([from, to], r) => Atomics.store(i32, countersAt / 4 + r, to - from));
      await workers;
      throw e;
    }
    const failed = await workers;
    if (failed) throw failed.error;
  } finally {
    table.release();
  }
}
