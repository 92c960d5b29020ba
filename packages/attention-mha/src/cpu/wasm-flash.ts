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
// This file drives a call; the row blocks and their tile calls are in wasm-blocks.ts, the chunk
// layouts (in place, copied, packed) in wasm-chunks.ts, prefill's work around the tiles in
// wasm-prefill.ts, decode's key pieces in wasm-decode.ts.
// The sparse forms (key lists, key blocks) gather each query's keys instead (wasm-sparse.ts).
// It declines (and `cpu-flash` runs) for what it does not cover: K/V not f32, an additive bias,
// head dims not a multiple of 4.
//
// Axis letters: B batch, S queries, T logical keys, Hq / Hkv heads, G = Hq/Hkv, D / Dv head dims.

import { AbortCheckpoint, BackendError, type CpuBackend, isCpuBackend, type wasm } from '@attnkit/tensor-core';
import type { AttentionInputs, AttentionOutputs, AttentionProblem, FusedAttentionKernel, KernelSupport } from '../problem.js';
import { type TileCallContext, blockTileCalls, denseRowBlocks } from './wasm-blocks.js';
import { type ChunkLayout, chunkLayout, packedChunk } from './wasm-chunks.js';
import { decodePieceKeys, runDecodePieces } from './wasm-decode.js';
import { Inboxes, finishPrefillJobs, stagePrefillJobs } from './wasm-prefill.js';
import { type QueueJob, runQueue } from './wasm-queue.js';
import { runWasmSparse } from './wasm-sparse.js';
import { type StatePointers, allocPartialStates, allocState, finishBatch, releaseState, stageQueries } from './wasm-state.js';
import { TILE_KEYS, flashTileModule } from './wasm-tile.js';

/** Query rows per block (positions × the G heads of one group). */
const BLOCK_ROWS = 32;
/** A problem with at most this many query rows streams K/V in cache-sized chunks (decode). */
const STREAM_ROWS = 64;
const STREAM_CHUNK_BYTES = 512 * 1024;
/** Otherwise one chunk holds up to this much K/V (all of it, for most prefill calls). */
const RESIDENT_CHUNK_BYTES = 128 * 1024 * 1024;

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
      // prefill: the queries' staging and the state's fill are the first phase of the first
      // chunk's queue, the finish the last phase of the last one's (one hand-off per chunk); a kv
      // head's tiles wait only for its own staging and packing, its finish for its own tiles
      let first: QueueJob[] = decode ? [] : stagePrefillJobs(heap, p, b, q, state, inboxes);
      const finish = decode ? null : finishPrefillJobs(heap, p, b, state, out, lse, inboxes);
      let finished = false;
      if (decode) stageQueries(heap, p, b, q, state);
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
        let layout: ChunkLayout;
        if (decode || p.rowMap) layout = chunkLayout(heap, p, b, c0, c1, src);
        else {
          const packed = packedChunk(heap, p, b, c0, c1, src, inboxes);
          layout = packed.layout;
          first = [...first, ...packed.jobs];
        }
        const ctx: TileCallContext = { p, qs: qs.byteOffset, meta: meta.byteOffset, layout, c0 };
        if (parts) {
          await runDecodePieces({ heap, kernel, pool, state, parts, pieceKeys, scores: scores.byteOffset, scoreBytes, checkpoint }, ctx, blocks, c0, c1);
          continue;
        }
        const own: StatePointers = { m: m.byteOffset, l: l.byteOffset, acc: acc.byteOffset };
        // every row block of every kv head is one job of the threads' shared queue (its calls
        // share the block's softmax state, so they run in order on one thread)
        const jobs: QueueJob[] = [];
        for (let g = 0; g < Hkv; g++) {
          for (const blk of blocks) {
            const { calls, keys } = blockTileCalls(ctx, g, blk, 0, c0, c1, own);
            if (calls.length > 0) jobs.push({ calls, madds: keys * (blk.i1 - blk.i0) * G * (D + Dv), head: g });
          }
        }
        const last = c0 + chunkKeys >= needTo;
        const ready = perHead(first, Hkv);
        const tiles = jobs.map((job) => ({ ...job, wait: { counter: job.head, count: ready[job.head] ?? 0 }, signal: job.head }));
        const done = perHead(tiles, Hkv).map((n, g) => n + (ready[g] ?? 0));
        await runQueue(heap, kernel, pool, [first, tiles, last && finish ? waitingFor(finish.jobs, done) : []], scores.byteOffset, scoreBytes, checkpoint, p.fn);
        first = [];
        finished = last;
      }
      if (finish) {
        // no chunk (no row sees a key): the staging and the finish (zeros) still run
        if (!finished) await runQueue(heap, kernel, pool, [first, waitingFor(finish.jobs, perHead(first, Hkv))], scores.byteOffset, scoreBytes, checkpoint, p.fn);
        finish.complete();
      } else finishBatch(heap, p, b, state, out, lse);
    }
  } finally {
    releaseState(state);
    parts?.release();
    inboxes.release();
    for (const region of [meta, scores, kChunk, vChunk]) region?.release();
  }
}

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/** How many of `jobs` signal each kv head's dependency counter. */
function perHead(jobs: readonly QueueJob[], Hkv: number): number[] {
  const counts = new Array<number>(Hkv).fill(0);
  for (const j of jobs) if (j.signal !== undefined) counts[j.signal] = (counts[j.signal] ?? 0) + 1;
  return counts;
}

/** Each kv head's jobs, waiting for its dependency counter to reach `counts[g]`. */
const waitingFor = (byHead: readonly (readonly QueueJob[])[], counts: readonly number[]): QueueJob[] =>
  byHead.flatMap((jobs, g) => jobs.map((job) => ({ ...job, wait: { counter: g, count: counts[g] ?? 0 } })));
const mib = (bytes: number): number => Math.ceil(bytes / 2 ** 20);
