// The fused CPU indexer kernel: scores and top-k in one pass over each query's visible keys,
// straight from the backend's arrays. Per query it holds one score row [T] and never an
// [S, T] block (unless the caller keeps the scores), scores keys in register-blocked tiles, and
// its top-k is a quickselect, so a decode step costs O(T·H_I·D_I + T) — linear in the context,
// like the math. With f32 keys and the backend's SIMD heap the scores run in WebAssembly
// (cpu-scores.ts); this file's f64 tiles score other key dtypes and very short runs.
//
// Axis letters: B batch, S queries, T keys, H_I heads, D_I head dim, K picks.

import { AbortCheckpoint, BackendError, type CpuBackend, type CpuStorage, decodeRange, isCpuBackend } from '@attnkit/tensor-core';
import { scoreRun } from './cpu-scores.js';
import { type FusedIndexerKernel, type IndexerScoreProblem, queryPosition } from './problem.js';
import { topKInto } from './top-k.js';

export const cpuIndexerKernel: FusedIndexerKernel = {
  name: 'cpu-indexer',
  supports(backend) {
    return isCpuBackend(backend) ? { ok: true } : { ok: false, reason: `runs on the cpu backend only (this is ${backend.info.name})` };
  },
  async run(backend, inputs, problem) {
    if (!isCpuBackend(backend)) throw new BackendError({ fn: problem.fn, expected: 'the cpu backend', got: backend.info.name });
    const { B, S, T, topk: K } = problem;
    const indices = new Int32Array(B * S * K).fill(-1);
    const scores = problem.keepScores ? new Float32Array(B * S * T).fill(-Infinity) : null;
    await scoreAndSelect(backend, problem, {
      q: backend.view(inputs.q),
      weights: backend.view(inputs.weights),
      keys: backend.storageOf(inputs.keys),
      keyRows: inputs.keys.shape[1] ?? 0,
      indices,
      scores,
    });
    return {
      indices: backend.adopt({ dtype: 'i32', data: indices }, [B, S, 1, K]),
      scores: scores ? backend.wrap(scores, [B, S, T]) : null,
    };
  },
};

interface HostArrays {
  /** [B, S, H_I, D_I] */
  readonly q: Float32Array;
  /** [B, S, H_I] */
  readonly weights: Float32Array;
  /** [B, Tcap, 1, D_I] in its storage dtype. */
  readonly keys: CpuStorage;
  /** Tcap */
  readonly keyRows: number;
  /** [B, S, K], −1 filled */
  readonly indices: Int32Array;
  /** [B, S, T], −∞ filled, or null */
  readonly scores: Float32Array | null;
}

/** Keys per tile: decoded together when the storage is not f32, scored 4 at a time. */
const TILE_KEYS = 64;

async function scoreAndSelect(backend: CpuBackend, p: IndexerScoreProblem, a: HostArrays): Promise<void> {
  const { B, S, T, heads: HI, headDim: DI, topk: K } = p;
  const checkpoint = new AbortCheckpoint(p.signal, p.fn);
  const row = new Float32Array(T);
  const scratch = new Float32Array(T);
  const qs = new Float64Array(HI * DI);
  const ws = new Float64Array(HI);
  const tile = new KeyTile(a.keys, DI);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < S; i++) {
      await checkpoint.check();
      const r = b * S + i;
      const visible = queryPosition(p, b, i) + 1; // keys 0..p
      const simd = a.keys.dtype === 'f32' ? await scoreRun(backend, a.q, r * HI * DI, a.weights, r * HI, HI, DI, a.keys.data, b * a.keyRows, visible) : null;
      if (simd) {
        try {
          if (a.scores) a.scores.set(simd.row, r * T);
          topKInto(simd.row, visible, K, a.indices, r * K, scratch);
        } finally {
          simd.release();
        }
        continue;
      }
      for (let e = 0; e < HI * DI; e++) qs[e] = a.q[r * HI * DI + e] as number;
      for (let j = 0; j < HI; j++) ws[j] = a.weights[r * HI + j] as number;
      for (let t0 = 0; t0 < visible; t0 += TILE_KEYS) {
        const n = Math.min(TILE_KEYS, visible - t0);
        tile.load(b * a.keyRows + t0, n); // rows (b, t0 … t0+n−1) of [B, Tcap, 1, D_I]
        scoreTile(qs, ws, HI, DI, tile.data, tile.offsets, n, row, t0);
      }
      if (a.scores) a.scores.set(row.subarray(0, visible), r * T);
      topKInto(row, visible, K, a.indices, r * K, scratch);
    }
  }
}

/** A tile of key rows as f32: the storage itself (f32, read in place) or rows decoded into scratch. */
class KeyTile {
  readonly data: Float32Array;
  readonly offsets = new Int32Array(TILE_KEYS);
  readonly #storage: CpuStorage;
  readonly #width: number;

  constructor(storage: CpuStorage, width: number) {
    this.#storage = storage;
    this.#width = width;
    this.data = storage.dtype === 'f32' ? storage.data : new Float32Array(TILE_KEYS * width);
  }

  /** Points the tile at n consecutive rows starting at row `first` of the storage. */
  load(first: number, n: number): void {
    const w = this.#width;
    const inPlace = this.#storage.dtype === 'f32';
    for (let j = 0; j < n; j++) {
      if (inPlace) {
        this.offsets[j] = (first + j) * w;
      } else {
        decodeRange(this.#storage, (first + j) * w, w, this.data, j * w);
        this.offsets[j] = j * w;
      }
    }
  }
}

/**
 * out[at + m] = Σ_j w_j · ReLU(q_j · k_m) for the n keys of a tile. Register-blocked 2 heads ×
 * 4 keys, as the attention core's score tile: each key element loaded feeds two heads and each
 * query element four keys. q [H_I, D_I] and w [H_I] in f64; keys stay in their f32 array.
 */
function scoreTile(qs: Float64Array, ws: Float64Array, HI: number, DI: number, k: Float32Array, kOff: Int32Array, n: number, out: Float32Array, at: number): void {
  let m = 0;
  for (; m + 3 < n; m += 4) {
    const k0 = kOff[m] as number;
    const k1 = kOff[m + 1] as number;
    const k2 = kOff[m + 2] as number;
    const k3 = kOff[m + 3] as number;
    let i0 = 0;
    let i1 = 0;
    let i2 = 0;
    let i3 = 0;
    let j = 0;
    for (; j + 1 < HI; j += 2) {
      const qa = j * DI;
      const qb = qa + DI;
      let s00 = 0;
      let s01 = 0;
      let s02 = 0;
      let s03 = 0;
      let s10 = 0;
      let s11 = 0;
      let s12 = 0;
      let s13 = 0;
      for (let d = 0; d < DI; d++) {
        const x = qs[qa + d] as number;
        const y = qs[qb + d] as number;
        const v0 = k[k0 + d] as number;
        const v1 = k[k1 + d] as number;
        const v2 = k[k2 + d] as number;
        const v3 = k[k3 + d] as number;
        s00 += x * v0;
        s01 += x * v1;
        s02 += x * v2;
        s03 += x * v3;
        s10 += y * v0;
        s11 += y * v1;
        s12 += y * v2;
        s13 += y * v3;
      }
      const wa = ws[j] as number;
      const wb = ws[j + 1] as number;
      i0 += wa * (s00 > 0 ? s00 : 0) + wb * (s10 > 0 ? s10 : 0);
      i1 += wa * (s01 > 0 ? s01 : 0) + wb * (s11 > 0 ? s11 : 0);
      i2 += wa * (s02 > 0 ? s02 : 0) + wb * (s12 > 0 ? s12 : 0);
      i3 += wa * (s03 > 0 ? s03 : 0) + wb * (s13 > 0 ? s13 : 0);
    }
    if (j < HI) {
      // odd last head
      const qa = j * DI;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let d = 0; d < DI; d++) {
        const x = qs[qa + d] as number;
        s0 += x * (k[k0 + d] as number);
        s1 += x * (k[k1 + d] as number);
        s2 += x * (k[k2 + d] as number);
        s3 += x * (k[k3 + d] as number);
      }
      const wa = ws[j] as number;
      i0 += wa * (s0 > 0 ? s0 : 0);
      i1 += wa * (s1 > 0 ? s1 : 0);
      i2 += wa * (s2 > 0 ? s2 : 0);
      i3 += wa * (s3 > 0 ? s3 : 0);
    }
    out[at + m] = i0;
    out[at + m + 1] = i1;
    out[at + m + 2] = i2;
    out[at + m + 3] = i3;
  }
  for (; m < n; m++) {
    const km = kOff[m] as number;
    let score = 0;
    for (let j = 0; j < HI; j++) {
      const qa = j * DI;
      let dot = 0;
      for (let d = 0; d < DI; d++) dot += (qs[qa + d] as number) * (k[km + d] as number);
      if (dot > 0) score += (ws[j] as number) * dot;
    }
    out[at + m] = score;
  }
}
