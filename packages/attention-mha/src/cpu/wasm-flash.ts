// The CPU fused attention kernel in WebAssembly SIMD (`cpu-wasm-flash`): the same flash
// schedule as `cpu-flash` — row blocks of one kv-head group sharing each key tile, an online
// softmax — with the tile math in `wasm-tile.ts`. The CPU backend's tensors live in JavaScript
// arrays, so K/V are streamed through the backend's WebAssembly heap in key chunks: for prefill
// one chunk usually holds every key; for decode (few query rows) chunks of ~512 KiB, so each
// key is read once from memory and the copy stays in cache while the tile reads it.
// The softmax state of every query row (m, l, acc) stays in the heap across chunks.
//
// The sparse forms (key lists, key blocks) gather each query's keys instead (wasm-sparse.ts).
// It declines (and `cpu-flash` runs) for what it does not cover: K/V not f32, an additive bias,
// head dims not a multiple of 4.
//
// Axis letters: B batch, S queries, T logical keys, Hq / Hkv heads, G = Hq/Hkv, D / Dv head dims.

import { AbortCheckpoint, BackendError, type CpuBackend, isCpuBackend, wasm } from '@attnkit/tensor-core';
import type { AttentionInputs, AttentionOutputs, AttentionProblem, FusedAttentionKernel, KernelSupport } from '../problem.js';
import { runWasmSparse } from './wasm-sparse.js';
import { allocState, finishBatch, releaseState, stageQueries } from './wasm-state.js';
import { type FlashTile, TILE_KEYS, buildFlashTileModule } from './wasm-tile.js';

/** Query rows per block (positions × the G heads of one group). */
const BLOCK_ROWS = 32;
/** A problem with at most this many query rows streams K/V in cache-sized chunks (decode). */
const STREAM_ROWS = 64;
const STREAM_CHUNK_BYTES = 512 * 1024;
/** Otherwise one chunk holds up to this much K/V (all of it, for most prefill calls). */
const RESIDENT_CHUNK_BYTES = 128 * 1024 * 1024;
/** Key rows readable past a tile (the score step reads keys up to n rounded up to 4). */
const KEY_PAD_ROWS = 4;
/** Row blocks per thread between two abort checkpoints (and two hand-offs to the workers). */
const ROUND_BLOCKS = 8;

export const cpuWasmFlashKernel: FusedAttentionKernel = {
  name: 'cpu-wasm-flash',
  supports(backend, inputs, problem) {
    return wasmFlashSupport(backend, inputs, problem);
  },
  async run(backend, inputs, problem) {
    if (!isCpuBackend(backend) || !backend.wasm) throw new BackendError({ fn: problem.fn, expected: 'the cpu backend with WebAssembly SIMD', got: backend.info.name });
    const { B, S, Hq, Dv } = problem;
    const out = new Float32Array(B * S * Hq * Dv);
    const lse = problem.returnLse ? new Float32Array(B * S * Hq) : null;
    if (problem.selection.kind === 'dense') await runWasmFlash(backend, backend.wasm, inputs, problem, out, lse);
    else await runWasmSparse(backend, backend.wasm, inputs, problem, out, lse);
    const result: AttentionOutputs = { out: backend.wrap(out, [B, S, Hq, Dv]), lse: lse ? backend.wrap(lse, [B, S, Hq]) : null };
    return result;
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
  const kernel = await heap.module('attention-mha/flash-tile', buildFlashTileModule);
  const tile = wasm.exported<FlashTile>(kernel.instance, 'flashTile');
  const { B, S, Hq, Hkv, D, Dv, T } = p;
  const G = Hq / Hkv;
  const q = backend.view(inputs.q);
  const k = backend.view(inputs.k);
  const v = inputs.v ? backend.view(inputs.v) : null;
  const kRow = Hkv * D; // floats per key row (all heads)
  const vRow = v ? Hkv * Dv : kRow;
  const keyBytes = 4 * (kRow + (v ? vRow : 0));
  const rows = S * Hq;
  const chunkKeys =
    rows <= STREAM_ROWS
      ? Math.max(TILE_KEYS, Math.floor(STREAM_CHUNK_BYTES / keyBytes / TILE_KEYS) * TILE_KEYS)
      : Math.max(TILE_KEYS, Math.min(roundUp(T, TILE_KEYS), Math.floor(RESIDENT_CHUNK_BYTES / keyBytes / TILE_KEYS) * TILE_KEYS));
  const positionsPerBlock = Math.max(1, Math.floor(BLOCK_ROWS / G));
  const blockRows = positionsPerBlock * G;
  // prefill splits row blocks over the worker threads; decode streams on the calling thread,
  // which is the one that copies K/V into the heap (and is bound by that copy)
  const pool = rows > STREAM_ROWS ? backend.wasmThreads : null;
  const threads = pool?.size ?? 1;

  // heap layout: queries and softmax state in row order [g][i][h within group]
  const state = allocState(heap, p);
  const { qs, acc, m, l } = state;
  const meta = heap.alloc(12 * S * G, p.fn);
  const kChunk = heap.alloc(4 * (chunkKeys + KEY_PAD_ROWS) * kRow, p.fn);
  const vChunk = v ? heap.alloc(4 * (chunkKeys + KEY_PAD_ROWS) * vRow, p.fn) : null;
  const scores = heap.alloc(4 * blockRows * TILE_KEYS * threads, p.fn); // one score block per thread
  const checkpoint = new AbortCheckpoint(p.signal, p.fn);
  try {
    for (let b = 0; b < B; b++) {
      const len = p.lengths[b] ?? T;
      stageQueries(heap, p, b, q, state);
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
        copyKeys(heap, p, b, c0, c1, k, kRow, kChunk);
        if (v && vChunk) copyKeys(heap, p, b, c0, c1, v, vRow, vChunk);
        const vBase = vChunk ?? kChunk;
        /** The tile calls of row block `blk` of kv head g over this chunk, scoring into `s`. */
        const tileCalls = (g: number, blk: RowBlock, s: number): number[][] => {
          const calls: number[][] = [];
          const R = (blk.i1 - blk.i0) * G;
          const row0 = (g * S + blk.i0) * G;
          const span = (from: number, to: number): void => {
            const end = Math.min(to, c1);
            for (let t = Math.max(from, c0); t < end; t += TILE_KEYS) {
              calls.push([
                qs.byteOffset + 4 * row0 * D,
                R,
                D,
                kChunk.byteOffset + 4 * ((t - c0) * kRow + g * D),
                4 * kRow,
                vBase.byteOffset + 4 * ((t - c0) * vRow + g * (v ? Dv : D)),
                4 * vRow,
                Dv,
                Math.min(TILE_KEYS, end - t),
                t,
                meta.byteOffset + 12 * blk.i0 * G,
                m.byteOffset + 4 * row0,
                l.byteOffset + 4 * row0,
                acc.byteOffset + 4 * row0 * Dv,
                s,
                // a tile some row of the block does not wholly see: P·V keeps each row's own keys
                isEdge(blk, t, t + Math.min(TILE_KEYS, end - t)) ? 1 : 0,
              ]);
            }
          };
          const sinkPart = Math.min(blk.sinks, blk.lo);
          if (sinkPart > 0) span(0, sinkPart);
          span(blk.lo, blk.hi);
          return calls;
        };
        const items = Array.from({ length: Hkv }, (_, g) => blocks.map((blk) => ({ g, blk }))).flat();
        for (let r0 = 0; r0 < items.length; r0 += ROUND_BLOCKS * threads) {
          // each block to the least-loaded thread (blocks differ in length under a causal mask)
          const lists: number[][][] = Array.from({ length: threads }, () => []);
          const load = new Array<number>(threads).fill(0);
          for (const { g, blk } of items.slice(r0, r0 + ROUND_BLOCKS * threads)) {
            const t = load.indexOf(Math.min(...load));
            const calls = tileCalls(g, blk, scores.byteOffset + t * 4 * blockRows * TILE_KEYS);
            (lists[t] as number[][]).push(...calls);
            load[t] = (load[t] as number) + calls.length * (blk.i1 - blk.i0);
          }
          if (pool && threads > 1) await pool.run(kernel, 'flashTile', lists);
          else for (const args of lists[0] ?? []) tile(...args);
          await checkpoint.check();
        }
      }
      finishBatch(heap, p, b, state, out, lse);
    }
  } finally {
    releaseState(state);
    for (const region of [meta, kChunk, vChunk, scores]) region?.release();
  }
}

const roundUp = (n: number, to: number): number => Math.ceil(n / to) * to;

/** Whether keys [t, end) are not all seen by every row of the block (a mask edge runs through them). */
function isEdge(blk: RowBlock, t: number, end: number): boolean {
  return !(end <= blk.allSinks || (t >= blk.allLo && end <= blk.allHi));
}
const mib = (bytes: number): number => Math.ceil(bytes / 2 ** 20);

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


/** K or V rows of logical keys c0..c1−1 of batch b into the chunk region (all heads per row). */
function copyKeys(heap: wasm.WasmHeap, p: AttentionProblem, b: number, c0: number, c1: number, src: Float32Array, rowFloats: number, dst: wasm.WasmRegion): void {
  const f32 = heap.f32;
  const { rowMap, T, poolRows } = p;
  if (!rowMap) {
    f32.set(src.subarray((b * T + c0) * rowFloats, (b * T + c1) * rowFloats), dst.index);
    return;
  }
  for (let t = c0; t < c1; t++) {
    const row = rowMap[b * T + t] as number;
    const at = dst.index + (t - c0) * rowFloats;
    // entries of keys no query sees are not checked (or are −1): those rows are never read unmasked
    if (row >= 0 && row < poolRows) f32.set(src.subarray(row * rowFloats, (row + 1) * rowFloats), at);
    else f32.fill(0, at, at + rowFloats);
  }
}

