// The sparse forms on the WebAssembly SIMD tile (DSA's top-k key lists, NSA's selected blocks):
// per query position and kv head, the listed keys (a set: repeats and −1 dropped, causality and
// lengths applied) are gathered — head g's rows only — into contiguous K and V blocks in the
// heap, and the G query heads of that kv head run the same tile as dense attention over them.
// Every gathered key is visible, so each row's mask is simply [0, count).
// A list long enough to pay for a hand-off (a decode step's 2048 DSA picks × DeepSeek-V3.2's 128
// heads) is split into pieces on the threads' shared queue, each into its own partial softmax
// state, merged after: the gather is the calling thread's, the tiles everyone's.

import { AbortCheckpoint, type CpuBackend, wasm } from '@attnkit/tensor-core';
import type { AttentionInputs, AttentionProblem } from '../problem.js';
import { ListedKeys } from './listed-keys.js';
import { type QueueJob, runQueue } from './wasm-queue.js';
import { allocPartialStates, allocState, finishBatch, mergeState, releaseState, stageQueries } from './wasm-state.js';
import { type FlashTile, TILE_KEYS, flashTileModule } from './wasm-tile.js';

/**
 * Multiply-adds of one (query, kv head) list from which its tiles go over the threads. On this
 * 2-vCPU VM a woken worker ran its share 1.5–1.75 ms behind the calling thread's, so a hand-off
 * pays only for long lists (session 7, idle, 2048 picks, serial → threads, median ms): 128 heads
 * × 576/512 (285 Mi) 54.1 → 37.2, 64 × 288/256 (71 Mi) 6.4 → 6.9 (best 5.0 → 4.5), 32 × 144/128
 * (18 Mi) 2.3 → 2.7, 16 × 192/128 (10 Mi) 3.6 → 3.9.
 */
const PARALLEL_MIN_MADDS = 1 << 25;
/** Pieces per thread of a parallel list (so a thread slowed by another process takes fewer). */
const PIECES_PER_THREAD = 4;

export async function runWasmSparse(
  backend: CpuBackend,
  heap: wasm.WasmHeap,
  inputs: AttentionInputs,
  p: AttentionProblem,
  out: Float32Array,
  lse: Float32Array | null,
): Promise<void> {
  const { selection } = p;
  if (selection.kind === 'dense') return;
  const kernel = await flashTileModule(heap, p.D, p.Dv);
  const tile = wasm.exported<FlashTile>(kernel.instance, 'flashTile');
  const { B, S, Hq, Hkv, D, Dv, T, causal, rowMap } = p;
  const G = Hq / Hkv;
  const q = backend.view(inputs.q);
  const k = backend.view(inputs.k);
  const v = inputs.v ? backend.view(inputs.v) : null;
  const vWidth = v ? Dv : D; // floats per value row in its tensor (values from keys: the key row)
  const listed = new ListedKeys(selection, T);
  const { list } = listed;
  const maxKeys = list.length;

  const state = allocState(heap, p);
  const kRows = heap.alloc(4 * maxKeys * D, p.fn);
  const vRows = v ? heap.alloc(4 * maxKeys * Dv, p.fn) : null;
  const meta = heap.alloc(12 * G, p.fn);
  const pool = backend.wasmThreads && backend.wasmThreads.size > 1 ? backend.wasmThreads : null;
  const threads = pool?.size ?? 1;
  const scoreBytes = 4 * G * TILE_KEYS;
  const scores = heap.alloc(scoreBytes * threads, p.fn); // one score block per thread
  const maxPieces = threads * PIECES_PER_THREAD;
  const parts = pool ? allocPartialStates(heap, p, maxPieces, G) : null;
  const checkpoint = new AbortCheckpoint(p.signal, p.fn);
  try {
    for (let b = 0; b < B; b++) {
      stageQueries(heap, p, b, q, state);
      const len = p.lengths[b] ?? T;
      for (let i = 0; i < S; i++) {
        const end = causal ? len - S + i + 1 : len; // keys [0, end) are visible
        for (let g = 0; g < Hkv; g++) {
          const listId = (b * S + i) * Hkv + g;
          const base = ((b * S + i) * (selection.perHead ? Hkv : 1) + (selection.perHead ? g : 0)) * selection.width;
          const count = listed.gather(base, end, listId);
          if (count === 0) continue;
          const f32 = heap.f32;
          for (let j = 0; j < count; j++) {
            const t = list[j] as number;
            const row = rowMap ? (rowMap[b * T + t] as number) : b * T + t;
            f32.set(k.subarray((row * Hkv + g) * D, (row * Hkv + g + 1) * D), kRows.index + j * D);
            if (v && vRows) f32.set(v.subarray((row * Hkv + g) * Dv, (row * Hkv + g + 1) * Dv), vRows.index + j * Dv);
          }
          const i32 = heap.i32;
          for (let r = 0; r < G; r++) i32.set([0, 0, count], meta.index + 3 * r);
          const row0 = (g * S + i) * G;
          const vAt = (vRows ?? kRows).byteOffset;
          if (parts && count * G * (D + Dv) >= PARALLEL_MIN_MADDS) {
            // whole tiles per piece, about PIECES_PER_THREAD pieces per thread
            const pieceKeys = Math.ceil(count / maxPieces / TILE_KEYS) * TILE_KEYS;
            const jobs: QueueJob[] = [];
            parts.reset();
            for (let a = 0, piece = 0; a < count; a += pieceKeys, piece++) {
              const to = Math.min(count, a + pieceKeys);
              const part = parts.pointers(piece);
              const span = [state.qs.byteOffset + 4 * row0 * D, G, D, kRows.byteOffset + 4 * a * D, 4 * D, vAt + 4 * a * vWidth, 4 * vWidth, Dv, a, to, meta.byteOffset, part.m, part.l, part.acc, 0, 0];
              jobs.push({ calls: [span], madds: (to - a) * G * (D + Dv), head: 0 });
            }
            await runQueue(heap, kernel, pool, [jobs], scores.byteOffset, scoreBytes, checkpoint, p.fn);
            for (let piece = 0; piece < jobs.length; piece++) mergeState(heap, p, state, parts.pointers(piece), { first: row0, count: G });
          } else {
            for (let t = 0; t < count; t += TILE_KEYS) {
              tile(
                state.qs.byteOffset + 4 * row0 * D,
                G,
                D,
                kRows.byteOffset + 4 * t * D,
                4 * D,
                vAt + 4 * t * vWidth,
                4 * vWidth,
                Dv,
                Math.min(TILE_KEYS, count - t),
                t,
                meta.byteOffset,
                state.m.byteOffset + 4 * row0,
                state.l.byteOffset + 4 * row0,
                state.acc.byteOffset + 4 * row0 * Dv,
                scores.byteOffset,
                0, // every gathered key is visible to every row: never an edge
              );
            }
          }
          await checkpoint.check();
        }
      }
      finishBatch(heap, p, b, state, out, lse);
    }
  } finally {
    releaseState(state);
    parts?.release();
    for (const region of [kRows, vRows, meta, scores]) region?.release();
  }
}
