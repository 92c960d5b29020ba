// The CPU fused attention kernel in WebAssembly SIMD (`cpu-wasm-flash`): the same flash
// schedule as `cpu-flash` — row blocks of one kv-head group sharing each key tile, an online
// softmax — with the tile math in `wasm-tile.ts`. K/V the backend keeps in its shared heap
// (large tensors and cache storage: CpuBackend's resident arrays) are read in place, and every
// call — prefill and decode — goes over the worker threads through a shared work queue: prefill's
// jobs are its row blocks, decode's pieces of its key range (each into a partial softmax state).
// K/V in JavaScript arrays are streamed through the heap in key chunks instead: for prefill one
// chunk usually holds every key; for decode (few query rows) chunks of ~512 KiB, so each key is
// read once from memory and the copy stays in cache while the tile reads it (on the calling
// thread, which is the one copying). The softmax state of every query row (m, l, acc)
// stays in the heap across chunks.
//
// The sparse forms (key lists, key blocks) gather each query's keys instead (wasm-sparse.ts).
// It declines (and `cpu-flash` runs) for what it does not cover: K/V not f32, an additive bias,
// head dims not a multiple of 4.
//
// Axis letters: B batch, S queries, T logical keys, Hq / Hkv heads, G = Hq/Hkv, D / Dv head dims.

import { AbortCheckpoint, BackendError, type CpuBackend, isCpuBackend, type wasm } from '@attnkit/tensor-core';
import type { AttentionInputs, AttentionOutputs, AttentionProblem, FusedAttentionKernel, KernelSupport } from '../problem.js';
import { runWasmSparse } from './wasm-sparse.js';
import { type StatePointers, allocPartialStates, allocState, finishBatch, mergeState, releaseState, stageQueries } from './wasm-state.js';
import { type ChunkSource, Inboxes, type TileJob, finishPrefill, packPrefillChunk, runTileJobs, stagePrefillQueries } from './wasm-prefill.js';
import { TILE_EDGE, TILE_KEYS, TILE_K_TRANSPOSED, flashTileModule } from './wasm-tile.js';

/** Query rows per block (positions × the G heads of one group). */
const BLOCK_ROWS = 32;
/**
 * Prefill packs K in transposed tiles up to this head dim. The tile alone is 1.04× faster with
 * them at d = 64 and 128 (tile.bench.ts), but end to end at d = 128 the duels against ORT leaned
 * the other way (K rows ahead in 5 of 7 back-to-back pairs, median 1.064× against 1.010×, at
 * load 2–3: within the noise, not a result); at d = 64 the K tiles led (1.075× / 1.120× against
 * 0.951× / 1.013×). Until an idle machine decides d = 128, it keeps K rows (BENCHMARKS.md).
 */
const K_TILES_MAX_D = 64;

/** A problem with at most this many query rows streams K/V in cache-sized chunks (decode). */
const STREAM_ROWS = 64;
const STREAM_CHUNK_BYTES = 512 * 1024;
/** Otherwise one chunk holds up to this much K/V (all of it, for most prefill calls). */
const RESIDENT_CHUNK_BYTES = 128 * 1024 * 1024;
/** Query rows per kv head up to which decode sweeps whole pieces in token order (wasm-sweep.ts). */
const SWEEP_MAX_ROWS = 8;
/** The most keys of one decode job (a piece of the key range on the threads' shared queue). */
const DECODE_PIECE_KEYS = 1024;

export const cpuWasmFlashKernel: FusedAttentionKernel = {
  name: 'cpu-wasm-flash',
  supports(backend, inputs, problem) {
    return wasmFlashSupport(backend, inputs, problem);
  },
  async run(backend, inputs, problem) {
    if (!isCpuBackend(backend) || !backend.wasm) throw new BackendError({ fn: problem.fn, expected: 'the cpu backend with WebAssembly SIMD', got: backend.info.name });
    const { B, S, Hq, Dv } = problem;
    // a large output lives in the heap (a resident array): the finish writes it in place
    const outTensor = backend.zeros([B, S, Hq, Dv], 'f32');
    try {
      const out = backend.view(outTensor);
      const lse = problem.returnLse ? new Float32Array(B * S * Hq) : null;
      if (problem.selection.kind === 'dense') await runWasmFlash(backend, backend.wasm, inputs, problem, out, lse);
      else await runWasmSparse(backend, backend.wasm, inputs, problem, out, lse);
      const result: AttentionOutputs = { out: outTensor, lse: lse ? backend.wrap(lse, [B, S, Hq]) : null };
      return result;
    } catch (e) {
      outTensor.dispose();
      throw e;
    }
  },
};

function wasmFlashSupport(backend: Parameters<FusedAttentionKernel['supports']>[0], inputs: AttentionInputs, problem: AttentionProblem): KernelSupport {
  if (!isCpuBackend(backend)) return { ok: false, reason: `runs on the cpu backend only (this is ${backend.info.name})` };
  if (!backend.wasm) return { ok: false, reason: `no WebAssembly SIMD: ${backend.wasmUnavailable ?? 'unavailable'}` };
  if (inputs.k.dtype !== 'f32' || (inputs.v && inputs.v.dtype !== 'f32')) return { ok: false, reason: `reads f32 K/V only (k ${inputs.k.dtype}${inputs.v ? `, v ${inputs.v.dtype}` : ''})` };
  if (inputs.bias) return { ok: false, reason: 'no additive bias' };
  if (problem.D % 4 !== 0 || problem.Dv % 4 !== 0) return { ok: false, reason: `head dims must be multiples of 4 (D ${problem.D}, Dv ${problem.Dv})` };
  // the per-batch queries and softmax state, plus at most one resident K/V chunk
  const { S, Hq, D, Dv } = problem;
  const need = 4 * S * Hq * (D + Dv + 2) + 2 * RESIDENT_CHUNK_BYTES;
  if (need > backend.wasm.maxBytes) return { ok: false, reason: `needs ~${mib(need)} MiB of WebAssembly heap, over its ${mib(backend.wasm.maxBytes)} MiB` };
  return { ok: true };
}

/** One block of query rows: positions i0..i1−1 and the key ranges any of its rows can see. */
interface RowBlock {
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

async function runWasmFlash(
  backend: CpuBackend,
  heap: wasm.WasmHeap,
  inputs: AttentionInputs,
  p: AttentionProblem,
  out: Float32Array,
  lse: Float32Array | null,
): Promise<void> {
  const kernel = await flashTileModule(heap, p.D, p.Dv);
  const { B, S, Hq, Hkv, D, Dv, T } = p;
  const G = Hq / Hkv;
  const q = backend.view(inputs.q);
  const k = backend.view(inputs.k);
  const v = inputs.v ? backend.view(inputs.v) : null;
  const kRow = Hkv * D; // floats per key row (all heads)
  const vRow = v ? Hkv * Dv : kRow;
  const keyBytes = 4 * (kRow + (v ? vRow : 0));
  const rows = S * Hq;
  // Decode reads K/V in place when the backend keeps them in its heap (and no row map is in the
  // way), else streams token-major copies through cache-sized chunks; prefill packs each chunk
  // head-major ([Hkv][keys][D]), so a tile's 64 key rows are contiguous instead of Hkv·D·4 bytes
  // apart (a stride that maps them onto a few L1 sets: 15% of the tile at Hkv 8, D 64).
  const decode = rows <= STREAM_ROWS;
  const kAt = heap.byteOffsetOf(k);
  const vAt = v ? heap.byteOffsetOf(v) : null;
  const inPlace: { readonly k: number; readonly v: number } | null = decode && !p.rowMap && kAt !== null && (!v || vAt !== null) ? { k: kAt, v: vAt ?? kAt } : null;
  const chunkKeys = inPlace
    ? roundUp(T, TILE_KEYS)
    : decode
      ? Math.max(TILE_KEYS, Math.floor(STREAM_CHUNK_BYTES / keyBytes / TILE_KEYS) * TILE_KEYS)
      : Math.max(TILE_KEYS, Math.min(roundUp(T, TILE_KEYS), Math.floor(RESIDENT_CHUNK_BYTES / keyBytes / TILE_KEYS) * TILE_KEYS));
  const positionsPerBlock = Math.max(1, Math.floor(BLOCK_ROWS / G));
  const blockRows = positionsPerBlock * G;
  // row blocks go over the worker threads, except when decode streams copies of K/V: then the
  // calling thread, which copies, is the bottleneck and runs the tiles itself
  const pool = inPlace || !decode ? backend.wasmThreads : null;
  const threads = pool?.size ?? 1;

  // heap layout: queries and softmax state in row order [g][i][h within group]
  const state = allocState(heap, p);
  const { qs, acc, m, l } = state;
  const meta = heap.alloc(12 * S * G, p.fn);
  const kChunk = inPlace ? null : heap.alloc(4 * chunkKeys * kRow, p.fn);
  const vChunk = v && !inPlace ? heap.alloc(4 * chunkKeys * vRow, p.fn) : null;
  const scoreBytes = 4 * blockRows * TILE_KEYS;
  const scores = heap.alloc(scoreBytes * threads, p.fn); // one score block per thread
  // decode over resident K/V splits the keys into pieces, each a job of the shared queue with its
  // own partial softmax state (merged after), so a thread slowed by another process takes fewer
  const pieceKeys = decodePieceKeys(T, threads);
  const parts = inPlace ? allocPartialStates(heap, p, Math.ceil(roundUp(T, TILE_KEYS) / pieceKeys)) : null;
  // copies of operands that are JavaScript arrays, for prefill's packing (one `set` each)
  const inboxes = new Inboxes(heap, p.fn);
  const checkpoint = new AbortCheckpoint(p.signal, p.fn);
  try {
    for (let b = 0; b < B; b++) {
      const len = p.lengths[b] ?? T;
      if (decode) stageQueries(heap, p, b, q, state);
      else await stagePrefillQueries(heap, kernel, pool, p, b, q, state, inboxes);
      parts?.reset();
      const blocks = denseRowBlocks(heap, p, len, meta, positionsPerBlock);
      let needFrom = Infinity;
      let needTo = 0;
      for (const blk of blocks) {
        if (blk.sinks > 0) needFrom = 0;
        if (blk.hi > blk.lo) {
          needFrom = Math.min(needFrom, blk.lo);
          needTo = Math.max(needTo, blk.hi);
        }
        if (blk.sinks > 0) needTo = Math.max(needTo, blk.sinks);
      }
      for (let c0 = needFrom === Infinity ? needTo : Math.floor(needFrom / TILE_KEYS) * TILE_KEYS; c0 < needTo; c0 += chunkKeys) {
        const c1 = Math.min(needTo, c0 + chunkKeys);
        const src = { k, v, inPlace, kChunk, vChunk, chunkKeys, decode };
        const layout = decode || p.rowMap ? chunkLayout(heap, p, b, c0, c1, src) : await packedChunk(heap, kernel, pool, p, b, c0, c1, src, inboxes);
        /**
         * The tile calls of row block `blk` of kv head g over keys [from, to) of this chunk,
         * scoring into `s` and carrying the softmax state at `part` (the rows' own, or a
         * split-key partial one).
         */
        const tileCalls = (g: number, blk: RowBlock, s: number, from: number, to: number, part: StatePointers): { calls: number[][]; keys: number } => {
          const calls: number[][] = [];
          let keys = 0;
          const R = (blk.i1 - blk.i0) * G;
          const row0 = (g * S + blk.i0) * G;
          // keys every row of the block sees take the plain P·V; the rest of a span (tiles that
          // some row sees only in part) the per-row masked one, so a hidden key's NaN stays out
          const push = (start: number, end: number, edge: boolean): void => {
            if (start >= end) return;
            keys += end - start;
            calls.push([
              qs.byteOffset + 4 * row0 * D,
              R,
              D,
              layout.k(g, start),
              layout.kStride,
              layout.v(g, start),
              layout.vStride,
              Dv,
              start,
              end,
              meta.byteOffset + 12 * blk.i0 * G,
              part.m + 4 * row0,
              part.l + 4 * row0,
              part.acc + 4 * row0 * Dv,
              s,
              (edge ? TILE_EDGE : 0) | (layout.kTiles ? TILE_K_TRANSPOSED : 0),
            ]);
          };
          // K in transposed tiles: a span starts at a whole tile of the chunk (keys before the
          // block's lo in it are masked like any hidden key: an edge span)
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
          // the sinks' span, then [lo, hi) — as one span (the mask hides the keys between) when
          // rounding lo down to its tile would reach back into the sinks'
          if (sinkPart > 0 && tileStart(Math.max(blk.lo, from)) < sinkPart) span(0, blk.hi);
          else {
            if (sinkPart > 0) span(0, sinkPart);
            span(blk.lo, blk.hi);
          }
          return { calls, keys };
        };
        const own: StatePointers = { m: m.byteOffset, l: l.byteOffset, acc: acc.byteOffset };
        if (parts) {
          // decode over resident K/V: pieces of keys on the shared queue (not a static split per
          // thread, which waited for a starved thread's half). A piece every row sees whole is
          // one decodeSweep call (token order, all kv heads per group of 4 keys: wasm-sweep.ts);
          // one with a mask edge goes tile by tile and every kv head of a tile in turn, so each
          // key's row (all heads) is read from memory once
          const jobs: TileJob[] = [];
          const sweeps: TileJob[] = [];
          // The sweep takes the one row block of all S positions (rows of kv head g: [g·R,
          // (g + 1)·R) of q and the state). Not with one kv head (its rows are contiguous
          // already: MLA-like 16 heads × 576 was 15% slower swept) nor with more than
          // SWEEP_MAX_ROWS rows per kv head (each 4-key call redoes every row's softmax step:
          // at G = 16 the sweep only tied the tiles at 64K and lost on a 512-key window).
          const R = S * G;
          const whole = blocks.length === 1 && blocks[0]?.i0 === 0 && blocks[0].i1 === S && Hkv > 1 && R <= SWEEP_MAX_ROWS ? blocks[0] : undefined;
          const kHead = layout.k(1, c0) - layout.k(0, c0);
          const vHead = layout.v(1, c0) - layout.v(0, c0);
          let pieces = 0;
          for (let from = c0; from < c1; from += pieceKeys) {
            const to = Math.min(c1, from + pieceKeys);
            const part = parts.pointers(pieces++);
            if (whole && !isEdge(whole, from, to)) {
              const sweep = [qs.byteOffset, R, layout.k(0, from), layout.kStride, kHead, layout.v(0, from), layout.vStride, vHead, from, to, meta.byteOffset, part.m, part.l, part.acc, 0, Hkv];
              sweeps.push({ calls: [sweep], madds: (to - from) * Hkv * R * (D + Dv), head: 0 });
              continue;
            }
            const calls: number[][] = [];
            let keys = 0;
            for (let t = from; t < to; t += TILE_KEYS) {
              const tEnd = Math.min(to, t + TILE_KEYS);
              // first read the tile's K/V rows of all heads in memory order (flashSpan with R = 0):
              // the heads' tiles below then find them in L2 instead of each missing on 64 rows
              // 4 KiB apart (a stride no prefetcher follows across pages): decode 1.5x
              calls.push([0, 0, D, layout.k(0, t), layout.kStride, layout.v(0, t), layout.vStride, Dv, t, tEnd, 0, 0, 0, 0, 0, 0]);
              for (let g = 0; g < Hkv; g++) {
                for (const blk of blocks) {
                  const tile = tileCalls(g, blk, 0, t, tEnd, part);
                  calls.push(...tile.calls);
                  keys += tile.keys * (blk.i1 - blk.i0) * G;
                }
              }
            }
            // one K/V stream: a single `head`, so the queue keeps the pieces in key order
            if (calls.length > 0) jobs.push({ calls, madds: keys * (D + Dv), head: 0 });
          }
          await runTileJobs(heap, kernel, pool, sweeps, scores.byteOffset, scoreBytes, checkpoint, p.fn, 'sweepQueue');
          await runTileJobs(heap, kernel, pool, jobs, scores.byteOffset, scoreBytes, checkpoint, p.fn);
          // a piece no row saw a key of left its state empty, which merges as nothing
          for (let i = 0; i < pieces; i++) mergeState(heap, p, state, parts.pointers(i));
          continue;
        }
        // every row block of every kv head is one job of the threads' shared queue (its calls
        // share the block's softmax state, so they run in order on one thread)
        const jobs: TileJob[] = [];
        for (let g = 0; g < Hkv; g++) {
          for (const blk of blocks) {
            const { calls, keys } = tileCalls(g, blk, 0, c0, c1, own);
            if (calls.length > 0) jobs.push({ calls, madds: keys * (blk.i1 - blk.i0) * G * (D + Dv), head: g });
          }
        }
        await runTileJobs(heap, kernel, pool, jobs, scores.byteOffset, scoreBytes, checkpoint, p.fn);
      }
      if (decode) finishBatch(heap, p, b, state, out, lse);
      else await finishPrefill(heap, kernel, pool, p, b, state, out, lse, inboxes);
    }
  } finally {
    releaseState(state);
    parts?.release();
    inboxes.release();
    for (const region of [meta, scores, kChunk, vChunk]) region?.release();
  }
}

/** Packs keys c0..c1−1 of batch b head-major on every thread (no row map) and says where the tiles read them. */
async function packedChunk(heap: wasm.WasmHeap, kernel: wasm.WasmKernelModule, pool: wasm.WasmThreadPool | null, p: AttentionProblem, b: number, c0: number, c1: number, src: ChunkSources, inboxes: Inboxes): Promise<ChunkLayout> {
  const { Hkv, D, Dv } = p;
  const { kChunk, vChunk, chunkKeys } = src;
  if (!kChunk) throw new BackendError({ fn: p.fn, expected: 'a K chunk region when K/V are not read in place', got: 'none' });
  const vWidth = src.v ? Dv : D;
  // K in transposed tiles for the K-tile score step, unless the values are read from the keys
  const kTiles = src.v !== null && vChunk !== null && D <= K_TILES_MAX_D;
  const sources: ChunkSource[] = [{ src: src.k, width: D, dst: kChunk, inbox: inboxes.get('k', 4 * chunkKeys * Hkv * D), transposed: kTiles }];
  if (src.v && vChunk) sources.push({ src: src.v, width: Dv, dst: vChunk, inbox: inboxes.get('v', 4 * chunkKeys * Hkv * Dv), transposed: false });
  await packPrefillChunk(heap, kernel, pool, p, b, c0, c1, sources, chunkKeys);
  const vRegion = vChunk ?? kChunk;
  return {
    // with kTiles, t is a whole tile of the chunk (t − c0 a multiple of 64): its tile's address
    k: (g, t) => kChunk.byteOffset + 4 * ((g * chunkKeys + t - c0) * D),
    v: (g, t) => vRegion.byteOffset + 4 * ((g * chunkKeys + t - c0) * vWidth),
    kStride: 4 * D,
    vStride: 4 * vWidth,
    kTiles,
  };
}

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/** Whether keys [t, end) are not all seen by every row of the block (a mask edge runs through them). */
function isEdge(blk: RowBlock, t: number, end: number): boolean {
  return !(end <= blk.allSinks || (t >= blk.allLo && end <= blk.allHi));
}
const mib = (bytes: number): number => Math.ceil(bytes / 2 ** 20);

/**
 * Keys per decode piece over `threads` threads: about 4 pieces per thread for short caches, at
 * most DECODE_PIECE_KEYS (a piece's K/V rows stay in L2 while its heads read them; 64 pieces at
 * T = 64K), whole tiles.
 */
function decodePieceKeys(T: number, threads: number): number {
  return Math.max(TILE_KEYS, Math.min(DECODE_PIECE_KEYS, roundUp(Math.ceil(T / (4 * threads)), TILE_KEYS)));
}

/** Each row's visible key ranges (into `meta`) and the row blocks of batch b with their spans. */
function denseRowBlocks(heap: wasm.WasmHeap, p: AttentionProblem, len: number, meta: wasm.WasmRegion, positionsPerBlock: number): RowBlock[] {
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


/** Where the tiles of one key chunk read K/V: the byte address of key t's row for kv head g, and the row strides. */
interface ChunkLayout {
  k(g: number, t: number): number;
  v(g: number, t: number): number;
  readonly kStride: number;
  readonly vStride: number;
  /** K in transposed tiles (TILE_K_TRANSPOSED): tile calls start at whole tiles of the chunk. */
  readonly kTiles: boolean;
}

interface ChunkSources {
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

/** Makes keys c0..c1−1 of batch b readable by the tiles (copying or packing them unless in place). */
function chunkLayout(heap: wasm.WasmHeap, p: AttentionProblem, b: number, c0: number, c1: number, src: ChunkSources): ChunkLayout {
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
