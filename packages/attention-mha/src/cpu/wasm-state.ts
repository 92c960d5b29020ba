// The softmax state of the WebAssembly attention kernels, kept in the backend's heap: the scaled
// queries and (m, l, acc) of every query row of one batch entry, in row order [g][i][h within
// group] so that each row block of one kv head is contiguous; and the way back to out / lse.

import type { wasm } from '@attnkit/tensor-core';
import type { AttentionProblem } from '../problem.js';

export interface StateRegions {
  readonly qs: wasm.WasmRegion;
  readonly acc: wasm.WasmRegion;
  readonly m: wasm.WasmRegion;
  readonly l: wasm.WasmRegion;
}

/** Heap regions for the queries and softmax state of S·Hq rows (release them when done). */
export function allocState(heap: wasm.WasmHeap, p: AttentionProblem): StateRegions {
  const rows = p.S * p.Hq;
  return { qs: heap.alloc(4 * rows * p.D, p.fn), acc: heap.alloc(4 * rows * p.Dv, p.fn), m: heap.alloc(4 * rows, p.fn), l: heap.alloc(4 * rows, p.fn) };
}

export function releaseState(r: StateRegions): void {
  for (const region of [r.qs, r.acc, r.m, r.l]) region.release();
}

/** Scaled queries of batch b in row order, and fresh softmax state (m −∞, l 0, acc 0). */
export function stageQueries(heap: wasm.WasmHeap, p: AttentionProblem, b: number, q: Float32Array, r: StateRegions): void {
  const { S, Hq, Hkv, D, Dv, scale } = p;
  const G = Hq / Hkv;
  const f32 = heap.f32;
  for (let g = 0; g < Hkv; g++) {
    for (let i = 0; i < S; i++) {
      for (let hh = 0; hh < G; hh++) {
        const src = ((b * S + i) * Hq + g * G + hh) * D;
        const dst = r.qs.index + ((g * S + i) * G + hh) * D;
        for (let d = 0; d < D; d++) f32[dst + d] = (q[src + d] as number) * scale;
      }
    }
  }
  f32.fill(0, r.acc.index, r.acc.index + S * Hq * Dv);
  f32.fill(-Infinity, r.m.index, r.m.index + S * Hq);
  f32.fill(0, r.l.index, r.l.index + S * Hq);
}

/** out = acc / l and lse = m + ln l for batch b; a row that saw no key gives zeros and −∞. */
export function finishBatch(
  heap: wasm.WasmHeap,
  p: AttentionProblem,
  b: number,
  r: StateRegions,
  out: Float32Array,
  lse: Float32Array | null,
): void {
  const { S, Hq, Hkv, Dv } = p;
  const G = Hq / Hkv;
  const f32 = heap.f32;
  for (let g = 0; g < Hkv; g++) {
    for (let i = 0; i < S; i++) {
      for (let hh = 0; hh < G; hh++) {
        const row = (g * S + i) * G + hh;
        const at = (b * S + i) * Hq + g * G + hh;
        const sum = f32[r.l.index + row] as number;
        // l = 0: no visible key (or only −∞ scores) → zeros, lse −∞; a NaN l makes the row NaN
        if (sum !== 0) {
          const inv = 1 / sum;
          const a = r.acc.index + row * Dv;
          for (let d = 0; d < Dv; d++) out[at * Dv + d] = (f32[a + d] as number) * inv;
        }
        if (lse) lse[at] = sum !== 0 ? (f32[r.m.index + row] as number) + Math.log(sum) : -Infinity;
      }
    }
  }
}
