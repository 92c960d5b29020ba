// The CPU fused attention kernel: flash-style, never an S×T score matrix. Queries are taken in
// blocks of rows — (position, head) pairs of one kv-head group, so every key tile is read once
// for all G query heads that share it (GQA without copying K/V) — and keys in tiles of
// TILE_KEYS with an online softmax (running max m, running sum l, rescaled accumulator).
// Dense attention walks contiguous key ranges; the sparse forms walk each query's key list.
//
// Axis letters: B batch, S queries, T logical keys, Hq / Hkv heads, G = Hq/Hkv, D / Dv head dims.

import { AbortCheckpoint, BackendError, type CpuStorage, isCpuBackend } from '@attnkit/tensor-core';
import type { AttentionOutputs, AttentionProblem, FusedAttentionKernel } from '../problem.js';
import { KvTileRows } from './kv-rows.js';
import { ListedKeys } from './listed-keys.js';
import { accumulateTile, accumulateVisible, scoreTile, softmaxTile, valuesFinite } from './tile-math.js';

/** Keys per tile: 64 rows of D ≤ 128 f32 stay within L1/L2 while a row block sweeps them. */
const TILE_KEYS = 64;
/** Query rows per block (positions × heads of one group); at least one position's G heads. */
const BLOCK_ROWS = 32;

export const cpuFlashKernel: FusedAttentionKernel = {
  name: 'cpu-flash',
  supports(backend) {
    return isCpuBackend(backend) ? { ok: true } : { ok: false, reason: `runs on the cpu backend only (this is ${backend.info.name})` };
  },
  async run(backend, inputs, problem) {
    if (!isCpuBackend(backend)) throw new BackendError({ fn: problem.fn, expected: 'the cpu backend', got: backend.info.name });
    const { B, S, Hq, Dv } = problem;
    const out = new Float32Array(B * S * Hq * Dv);
    const lse = problem.returnLse ? new Float32Array(B * S * Hq) : null;
    const flash = new FlashCpu(problem, {
      q: backend.view(inputs.q),
      k: backend.storageOf(inputs.k),
      v: inputs.v ? backend.storageOf(inputs.v) : null,
      bias: inputs.bias ? backend.view(inputs.bias) : null,
      out,
      lse,
    });
    await flash.run();
    const result: AttentionOutputs = { out: backend.wrap(out, [B, S, Hq, Dv]), lse: lse ? backend.wrap(lse, [B, S, Hq]) : null };
    return result;
  },
};

interface FlashArrays {
  readonly q: Float32Array;
  readonly k: CpuStorage;
  readonly v: CpuStorage | null;
  readonly bias: Float32Array | null;
  readonly out: Float32Array;
  readonly lse: Float32Array | null;
}

class FlashCpu {
  readonly #p: AttentionProblem;
  readonly #a: FlashArrays;
  readonly #G: number;
  readonly #rowsMax: number;
  // per-block scratch
  readonly #qs: Float64Array; // [rows, D] scaled queries
  readonly #s: Float64Array; // [rows, TILE_KEYS] scores, then probabilities
  readonly #m: Float64Array; // [rows] running max
  readonly #l: Float64Array; // [rows] running sum
  readonly #acc: Float64Array; // [rows, Dv]
  readonly #outAt: Int32Array; // [rows] flat (b, i, h) index of the row
  readonly #biasAt: Int32Array; // [rows] bias offset of (b, h, i)
  readonly #lo: Int32Array; // [rows] dense: first key of the window part
  readonly #hi: Int32Array; // [rows] dense: one past the last visible key
  readonly #sinkEnd: Int32Array; // [rows] dense: keys below this are attention sinks
  readonly #visible: Uint8Array; // [rows, TILE_KEYS] an edge tile's visible keys (1) per row
  readonly #tileKeys = new Int32Array(TILE_KEYS);
  readonly #kRows: KvTileRows;
  readonly #vRows: KvTileRows;
  // bias strides over [B, Hq, S, T] (0 on broadcast axes)
  readonly #bsB: number;
  readonly #bsH: number;
  readonly #bsS: number;
  readonly #bsT: number;
  readonly #checkpoint: AbortCheckpoint;

  constructor(problem: AttentionProblem, arrays: FlashArrays) {
    this.#p = problem;
    this.#a = arrays;
    const { Hq, Hkv, D, Dv } = problem;
    this.#G = Hq / Hkv;
    const rows = Math.max(this.#G, Math.floor(BLOCK_ROWS / this.#G) * this.#G);
    this.#rowsMax = rows;
    this.#qs = new Float64Array(rows * D);
    this.#s = new Float64Array(rows * TILE_KEYS);
    this.#visible = new Uint8Array(rows * TILE_KEYS);
    this.#m = new Float64Array(rows);
    this.#l = new Float64Array(rows);
    this.#acc = new Float64Array(rows * Dv);
    this.#outAt = new Int32Array(rows);
    this.#biasAt = new Int32Array(rows);
    this.#lo = new Int32Array(rows);
    this.#hi = new Int32Array(rows);
    this.#sinkEnd = new Int32Array(rows);
    this.#kRows = new KvTileRows(arrays.k, D, TILE_KEYS);
    // Without v, values are the first Dv channels of the key rows the tile already holds.
    this.#vRows = arrays.v ? new KvTileRows(arrays.v, Dv, TILE_KEYS) : this.#kRows;
    const [Bb, Hb, Sb, Tb] = problem.biasShape ?? [1, 1, 1, 1];
    this.#bsT = Tb === 1 ? 0 : 1;
    this.#bsS = Sb === 1 ? 0 : Tb;
    this.#bsH = Hb === 1 ? 0 : Sb * Tb;
    this.#bsB = Bb === 1 ? 0 : Hb * Sb * Tb;
    this.#checkpoint = new AbortCheckpoint(problem.signal, problem.fn);
  }

  async run(): Promise<void> {
    await this.#checkpoint.check();
    if (this.#p.selection.kind === 'dense') await this.#dense();
    else await this.#sparse();
  }

  // --- dense: contiguous key ranges per row block --------------------------------------------

  async #dense(): Promise<void> {
    const { B, S, Hkv, causal, window, sinkTokens } = this.#p;
    const G = this.#G;
    const positionsPerBlock = this.#rowsMax / G;
    for (let b = 0; b < B; b++) {
      const len = this.#p.lengths[b] ?? this.#p.T;
      for (let g = 0; g < Hkv; g++) {
        for (let i0 = 0; i0 < S; i0 += positionsPerBlock) {
          const i1 = Math.min(S, i0 + positionsPerBlock);
          const R = (i1 - i0) * G;
          let blockLo = Infinity;
          let blockHi = 0;
          let blockSink = 0;
          for (let i = i0; i < i1; i++) {
            const pos = len - S + i; // bottom-right: the S queries end the sequence
            const hi = causal ? Math.min(pos + 1, len) : len;
            const lo = causal && window !== null ? Math.max(0, pos - window + 1) : 0;
            const sinkEnd = Math.min(sinkTokens, lo);
            for (let r = (i - i0) * G; r < (i - i0 + 1) * G; r++) {
              this.#lo[r] = lo;
              this.#hi[r] = hi;
              this.#sinkEnd[r] = sinkEnd;
            }
            blockLo = Math.min(blockLo, lo);
            blockHi = Math.max(blockHi, hi);
            blockSink = Math.max(blockSink, sinkEnd);
          }
          this.#beginRows(b, g, i0, i1);
          // Visible keys of the block: the sinks [0, blockSink) and the window part [blockLo, blockHi).
          const sinkPart = Math.min(blockSink, blockLo);
          if (sinkPart > 0) await this.#denseRange(b, g, R, 0, sinkPart);
          await this.#denseRange(b, g, R, blockLo, blockHi);
          this.#finishRows(R);
        }
      }
    }
  }

  async #denseRange(b: number, g: number, R: number, from: number, to: number): Promise<void> {
    const keys = this.#tileKeys;
    for (let t0 = from; t0 < to; t0 += TILE_KEYS) {
      const n = Math.min(TILE_KEYS, to - t0);
      for (let j = 0; j < n; j++) keys[j] = t0 + j;
      this.#loadTile(b, g, n);
      scoreTile(this.#qs, R, this.#p.D, this.#kRows.data, this.#kRows.offsets, n, this.#s, TILE_KEYS);
      this.#addBias(R, n);
      // after the bias: a hidden key's score is −∞ whatever its bias or K holds (NaN included)
      const edge = this.#maskDense(R, t0, n);
      softmaxTile(this.#s, R, n, TILE_KEYS, this.#m, this.#l, this.#acc, this.#p.Dv);
      // A hidden key's weight is 0, which is harmless unless its value is not finite: only then
      // does an edge tile take the per-row loop (one pass over the tile's values decides).
      const vRows = this.#vRows;
      if (edge && !valuesFinite(vRows.data, vRows.offsets, n, this.#p.Dv)) accumulateVisible(this.#s, this.#visible, R, n, TILE_KEYS, vRows.data, vRows.offsets, this.#p.Dv, this.#acc);
      else accumulateTile(this.#s, R, n, TILE_KEYS, vRows.data, vRows.offsets, this.#p.Dv, this.#acc);
      await this.#checkpoint.check();
    }
  }

  /**
   * −∞ on keys t0..t0+n−1 outside a row's [0, sinkEnd) ∪ [lo, hi). Returns whether the tile is
   * an edge (some key hidden from some row); then #visible holds each row's visible keys, so
   * their values are summed and the hidden ones skipped.
   */
  #maskDense(R: number, t0: number, n: number): boolean {
    const s = this.#s;
    const t1 = t0 + n;
    let edge = false;
    for (let r = 0; r < R; r++) {
      const lo = this.#lo[r] as number;
      const hi = this.#hi[r] as number;
      const sinkEnd = this.#sinkEnd[r] as number;
      if ((t0 >= lo && t1 <= hi) || t1 <= sinkEnd) continue; // the whole tile is visible
      if (!edge) {
        // rows before this one saw the whole tile
        this.#visible.fill(1, 0, R * TILE_KEYS);
        edge = true;
      }
      const o = r * TILE_KEYS;
      for (let j = 0; j < n; j++) {
        const t = t0 + j;
        if (t < sinkEnd || (t >= lo && t < hi)) continue;
        s[o + j] = -Infinity;
        this.#visible[o + j] = 0;
      }
    }
    return edge;
  }

  // --- sparse: per-query key lists -----------------------------------------------------------

  async #sparse(): Promise<void> {
    const { B, S, Hkv, T, causal, selection } = this.#p;
    if (selection.kind === 'dense') return;
    const G = this.#G;
    const listed = new ListedKeys(selection, T);
    const { list } = listed;
    const keys = this.#tileKeys;
    for (let b = 0; b < B; b++) {
      const len = this.#p.lengths[b] ?? T;
      for (let i = 0; i < S; i++) {
        const end = causal ? len - S + i + 1 : len; // keys [0, end) are visible
        for (let g = 0; g < Hkv; g++) {
          const listId = (b * S + i) * Hkv + g;
          const base = ((b * S + i) * (selection.perHead ? Hkv : 1) + (selection.perHead ? g : 0)) * selection.width;
          const count = listed.gather(base, end, listId);
          this.#beginRows(b, g, i, i + 1);
          for (let c = 0; c < count; c += TILE_KEYS) {
            const n = Math.min(TILE_KEYS, count - c);
            for (let j = 0; j < n; j++) keys[j] = list[c + j] as number;
            this.#loadTile(b, g, n);
            scoreTile(this.#qs, G, this.#p.D, this.#kRows.data, this.#kRows.offsets, n, this.#s, TILE_KEYS);
            this.#addBias(G, n);
            softmaxTile(this.#s, G, n, TILE_KEYS, this.#m, this.#l, this.#acc, this.#p.Dv);
            accumulateTile(this.#s, G, n, TILE_KEYS, this.#vRows.data, this.#vRows.offsets, this.#p.Dv, this.#acc);
          }
          this.#finishRows(G);
          await this.#checkpoint.check();
        }
      }
    }
  }

  // --- shared steps --------------------------------------------------------------------------

  /** Rows of positions i0..i1−1 × the G heads of kv head g: scaled queries, fresh softmax state. */
  #beginRows(b: number, g: number, i0: number, i1: number): void {
    const { S, Hq, D, Dv, scale } = this.#p;
    const G = this.#G;
    const q = this.#a.q;
    const qs = this.#qs;
    let r = 0;
    for (let i = i0; i < i1; i++) {
      for (let h = g * G; h < (g + 1) * G; h++, r++) {
        const at = (b * S + i) * Hq + h;
        this.#outAt[r] = at;
        this.#biasAt[r] = b * this.#bsB + h * this.#bsH + i * this.#bsS;
        const src = at * D;
        const dst = r * D;
        for (let d = 0; d < D; d++) qs[dst + d] = (q[src + d] as number) * scale;
      }
    }
    this.#m.fill(-Infinity, 0, r);
    this.#l.fill(0, 0, r);
    this.#acc.fill(0, 0, r * Dv);
  }

  /** Points (or decodes) the tile's K and V rows at the logical keys in #tileKeys[0..n). */
  #loadTile(b: number, g: number, n: number): void {
    const { T, Hkv, D, Dv, rowMap } = this.#p;
    const keys = this.#tileKeys;
    const vWidth = this.#a.v ? Dv : D;
    const shared = this.#vRows === this.#kRows;
    for (let j = 0; j < n; j++) {
      const t = keys[j] as number;
      const row = rowMap ? (rowMap[b * T + t] as number) : b * T + t;
      this.#kRows.load(j, (row * Hkv + g) * D);
      if (!shared) this.#vRows.load(j, (row * Hkv + g) * vWidth);
    }
  }

  #addBias(R: number, n: number): void {
    const bias = this.#a.bias;
    if (!bias) return;
    const s = this.#s;
    const keys = this.#tileKeys;
    const sT = this.#bsT;
    for (let r = 0; r < R; r++) {
      const base = this.#biasAt[r] as number;
      const o = r * TILE_KEYS;
      for (let j = 0; j < n; j++) s[o + j] = (s[o + j] as number) + (bias[base + (keys[j] as number) * sT] as number);
    }
  }

  /**
   * out = acc / l and lse = m + ln l; a row that saw no key (or only −∞ scores: l = 0) outputs
   * zeros and lse −∞. A NaN l (a NaN or +∞ score) makes the row NaN.
   */
  #finishRows(R: number): void {
    const { Dv } = this.#p;
    const { out, lse } = this.#a;
    for (let r = 0; r < R; r++) {
      const at = this.#outAt[r] as number;
      const l = this.#l[r] as number;
      const o = at * Dv;
      const a = r * Dv;
      if (l !== 0) {
        const inv = 1 / l;
        for (let d = 0; d < Dv; d++) out[o + d] = (this.#acc[a + d] as number) * inv;
      }
      if (lse) lse[at] = l !== 0 ? (this.#m[r] as number) + Math.log(l) : -Infinity;
    }
  }
}
