// The softmax state of the WebAssembly attention kernels, kept in the backend's heap: the scaled
// queries and (m, l, acc) of every query row of one batch entry, in row order [g][i][h within
// group] so that each row block of one kv head is contiguous; and the way back to out / lse.

import type { wasm } from '@attnkit/tensor-core';
import type { AttentionProblem } from '../problem.js';
import { LOG2_SCORES } from './wasm-tile.js';

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

/** Queries of batch b scaled (by scale · LOG2_SCORES: the tile's scores are in log2 units) in row order, and fresh softmax state (m −∞, l 0, acc 0). */
export function stageQueries(heap: wasm.WasmHeap, p: AttentionProblem, b: number, q: Float32Array, r: StateRegions): void {
  const { S, Hq, Hkv, D, Dv } = p;
  const scale = p.scale * LOG2_SCORES;
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

/** out = acc / l and lse = m · ln 2 + ln l (m in log2 units) for batch b; a row that saw no key gives zeros and −∞. */
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
        if (lse) lse[at] = sum !== 0 ? (f32[r.m.index + row] as number) * Math.LN2 + Math.log(sum) : -Infinity;
      }
    }
  }
}

/** Byte addresses of a softmax state's m, l and acc (row 0). */
export interface StatePointers {
  readonly m: number;
  readonly l: number;
  readonly acc: number;
}

/** `count` partial softmax states of `rows` rows (default S·Hq: split-key decode), each [acc | m | l]. */
export interface PartialStates {
  pointers(i: number): StatePointers;
  /** Every partial state back to m −∞, l 0, acc 0. */
  reset(): void;
  release(): void;
}

export function allocPartialStates(heap: wasm.WasmHeap, p: AttentionProblem, count: number, rows = p.S * p.Hq): PartialStates {
  const floats = rows * (p.Dv + 2);
  const region = heap.alloc(4 * floats * count, p.fn);
  const at = (i: number): number => region.byteOffset + 4 * floats * i;
  return {
    pointers: (i) => ({ acc: at(i), m: at(i) + 4 * rows * p.Dv, l: at(i) + 4 * rows * (p.Dv + 1) }),
    reset: () => {
      const f32 = heap.f32;
      for (let i = 0; i < count; i++) {
        const base = at(i) / 4;
        f32.fill(0, base, base + rows * p.Dv);
        f32.fill(-Infinity, base + rows * p.Dv, base + rows * (p.Dv + 1));
        f32.fill(0, base + rows * (p.Dv + 1), base + floats);
      }
    },
    release: () => region.release(),
  };
}

/**
 * Folds a partial state (keys another thread saw) into the rows' own: with M = max(m, m'),
 * l ← l·2^(m − M) + l'·2^(m' − M) and acc likewise (m in log2 units). A side that saw no key (m = −∞) adds nothing.
 * `rows`: only own rows [first, first + count), the partial holding them from its row 0 (default
 * every row, in the same order).
 */
export function mergeState(heap: wasm.WasmHeap, p: AttentionProblem, own: StateRegions, part: StatePointers, rows = { first: 0, count: p.S * p.Hq }): void {
  const { Dv } = p;
  const f32 = heap.f32;
  for (let i = 0; i < rows.count; i++) {
    const r = rows.first + i;
    const mp = f32[part.m / 4 + i] as number;
    if (mp === -Infinity) continue;
    const mo = f32[own.m.index + r] as number;
    const mNew = Math.max(mo, mp);
    const so = mo === -Infinity ? 0 : 2 ** (mo - mNew);
    const sp = 2 ** (mp - mNew);
    f32[own.m.index + r] = mNew;
    f32[own.l.index + r] = (f32[own.l.index + r] as number) * so + (f32[part.l / 4 + i] as number) * sp;
    const a = own.acc.index + r * Dv;
    const b = part.acc / 4 + i * Dv;
    for (let d = 0; d < Dv; d++) f32[a + d] = (f32[a + d] as number) * so + (f32[b + d] as number) * sp;
  }
}
