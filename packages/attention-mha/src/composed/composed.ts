// The composed fallback: attention from tensor-core primitives, for any backend. Queries go in
// chunks so the score block [B, Hkv, G, Sc, T] stays under SCORE_BUDGET elements; GQA is a
// broadcast over a size-1 group axis of K and V (MLX's fallback does the same), never a copy
// per head. Paged and quantised keys become one dense f32 copy first (gather / cast).
//
// Axis letters: B batch, S queries (Sc per chunk), T keys, Hq = Hkv·G heads, D / Dv head dims.

import {
  AbortCheckpoint,
  type Backend,
  type Tensor,
  cast,
  concat,
  gather,
  logSumExp,
  matmul,
  reshape,
  slice,
  softmax,
  tensor,
  transpose,
  add,
  affine,
  exp,
  minimum,
  neg,
  relu,
  sub,
  zeros,
} from '@attnkit/tensor-core';
import type { AttentionInputs, AttentionOutputs, AttentionProblem } from '../problem.js';
import { visibilityMask } from './visibility.js';

/** Most score elements one chunk may hold (16 MiB of f32). */
const SCORE_BUDGET = 1 << 22;

export async function composedAttention(backend: Backend, inputs: AttentionInputs, p: AttentionProblem): Promise<AttentionOutputs> {
  const { B, S, Hq, Hkv, D, Dv, T } = p;
  const G = Hq / Hkv;
  if (S === 0) return { out: zeros(backend, [B, 0, Hq, Dv]), lse: p.returnLse ? zeros(backend, [B, 0, Hq]) : null };
  // K and V as [B, Hkv, 1, T, D|Dv] f32: the size-1 axis broadcasts over the G heads of a group.
  using kDense = await denseRows(backend, inputs.k, p); // [B, T, Hkv, D]
  using vDense = inputs.v ? await denseRows(backend, inputs.v, p) : await slice(kDense, [0, 0, 0, 0], [B, T, Hkv, Dv]);
  using kT = await transpose(kDense, [0, 2, 1, 3]);
  using vT = await transpose(vDense, [0, 2, 1, 3]);
  using k5 = reshape(kT, [B, Hkv, 1, T, D]);
  using v5 = reshape(vT, [B, Hkv, 1, T, Dv]);
  using bias4 = inputs.bias && p.biasShape ? reshape(inputs.bias, p.biasShape) : null;

  const chunk = Math.max(1, Math.min(S, Math.floor(SCORE_BUDGET / Math.max(1, B * Hq * T))));
  // NaN-safe values for P·V, made on the first chunk where some query does not see some key
  let safe: SafeValues | null = null;
  const checkpoint = new AbortCheckpoint(p.signal, p.fn, 0);
  const outs: Tensor[] = [];
  const lses: Tensor[] = [];
  try {
    for (let i0 = 0; i0 < S; i0 += chunk) {
      await checkpoint.check();
      const Sc = Math.min(chunk, S - i0);
      using qc = await slice(inputs.q, [0, i0, 0, 0], [B, Sc, Hq, D]);
      using qc5 = reshape(qc, [B, Sc, Hkv, G, D]);
      using qT = await transpose(qc5, [0, 2, 3, 1, 4]); // [B, Hkv, G, Sc, D]
      using scores = await matmul(qT, k5, { transposeB: true }); // [B, Hkv, G, Sc, T]
      using mask = await chunkMask(backend, p, bias4, i0, Sc, G);
      using probs = await softmax(scores, { scale: p.scale, mask });
      const vis = visibilityMask(p, i0, Sc);
      if (vis && !safe && vis.data.some((x) => x !== 0)) safe = await hiddenSafeValues(v5);
      using o5 = await valuesProduct(backend, p, probs, v5, safe && vis ? vis : null, safe, Sc); // [B, Hkv, G, Sc, Dv]
      using oT = await transpose(o5, [0, 3, 1, 2, 4]); // [B, Sc, Hkv, G, Dv]
      outs.push(reshape(oT, [B, Sc, Hq, Dv]));
      if (p.returnLse) {
        using l4 = await logSumExp(scores, { scale: p.scale, mask }); // [B, Hkv, G, Sc]
        using lT = await transpose(l4, [0, 3, 1, 2]); // [B, Sc, Hkv, G]
        lses.push(reshape(lT, [B, Sc, Hq]));
      }
    }
    const out = await joinChunks(outs);
    try {
      return { out, lse: p.returnLse ? await joinChunks(lses) : null };
    } catch (error) {
      out.dispose();
      throw error;
    }
  } finally {
    for (const t of [...outs, ...lses]) t.dispose();
    safe?.[Symbol.dispose]();
  }
}

/** V with every non-finite value replaced by a finite one, and the 0/1 flag of which were not. */
interface SafeValues extends Disposable {
  /** [B, Hkv, 1, T, Dv]: NaN → 0, ±∞ → ±FLT_MAX, finite values exact. */
  readonly finite: Tensor;
  /** [B, Hkv, 1, T, Dv]: 1 where V is NaN or ±∞, else 0. */
  readonly flag: Tensor;
}

const FLT_MAX = 3.4028234663852886e38;

/**
 * P·V as a matrix product weights a hidden key by 0, and 0 · NaN is NaN: a non-finite value of a
 * key hidden from one query would reach it. So where a mask hides keys the product runs on
 * finite values, and a row that sees a non-finite value (counted as visible · flag) gets NaN
 * added back. Primitives only: relu(NaN) = 0 on every backend, min against FLT_MAX clips ±∞, and
 * x·0 + 1 is NaN exactly for a non-finite x.
 */
async function hiddenSafeValues(v5: Tensor): Promise<SafeValues> {
  const backend = v5.backend;
  using max = tensor(backend, Float32Array.of(FLT_MAX), [1]);
  using positive = await relu(v5);
  using negated = await neg(v5);
  using negative = await relu(negated);
  using positiveClipped = await minimum(positive, max);
  using negativeClipped = await minimum(negative, max);
  const finite = await sub(positiveClipped, negativeClipped);
  try {
    using oneOrNaN = await affine(v5, 0, 1);
    using oneOrZero = await relu(oneOrNaN);
    const flag = await affine(oneOrZero, -1, 1);
    return {
      finite,
      flag,
      [Symbol.dispose]() {
        finite.dispose();
        flag.dispose();
      },
    };
  } catch (error) {
    finite.dispose();
    throw error;
  }
}

/**
 * probs · V → [B, Hkv, G, Sc, Dv]. With a visibility mask `vis` (and the safe values), a hidden
 * key's non-finite value stays out (see hiddenSafeValues); a visible ±∞ value gives NaN here
 * rather than ±∞. Without one, the plain product: IEEE as it stands.
 */
async function valuesProduct(backend: Backend, p: AttentionProblem, probs: Tensor, v5: Tensor, vis: { data: Float32Array; heads: number } | null, safe: SafeValues | null, Sc: number): Promise<Tensor> {
  if (!vis || !safe) return matmul(probs, v5);
  using finiteProduct = await matmul(probs, safe.finite);
  using seen = tensor(backend, vis.data.map((x) => (x === 0 ? 1 : 0)), [p.B, vis.heads, 1, Sc, p.T]); // 1 where visible
  using hits = await matmul(seen, safe.flag); // [B, Hkv, 1, Sc, Dv]: visible non-finite values per channel
  using scaled = await affine(hits, 1e30, 0);
  using huge = await exp(scaled); // 1 without a hit, +∞ with one or more
  using nanWhereHit = await affine(huge, 0, 0); // 0, or ∞ · 0 = NaN
  return await add(finiteProduct, nanWhereHit);
}

/** The chunks concatenated along S; a single chunk is taken out of the list (the caller disposes the rest). */
async function joinChunks(chunks: Tensor[]): Promise<Tensor> {
  if (chunks.length === 1) {
    const only = chunks.pop();
    if (only) return only;
  }
  return concat(chunks, 1);
}

/** k or v as dense f32 [B, T, Hkv, W]: gathered through the row map, or dequantised. */
async function denseRows(backend: Backend, x: Tensor, p: AttentionProblem): Promise<Tensor> {
  if (p.rowMap) {
    using rows = tensor(backend, safeRowMap(p), [p.B, p.T], { dtype: 'i32' });
    return await gather(x, rows); // [R, Hkv, W] by [B, T] → [B, T, Hkv, W], decoded
  }
  // A fresh handle even for f32, so the caller disposes what it got either way.
  return x.dtype === 'f32' ? reshape(x, x.shape) : cast(x, 'f32');
}

/** The row map with rows past each sequence's length (never visible, possibly −1) pointed at row 0. */
function safeRowMap(p: AttentionProblem): Int32Array {
  const rows = Int32Array.from(p.rowMap ?? []);
  for (let b = 0; b < p.B; b++) rows.fill(0, b * p.T + (p.lengths[b] ?? p.T), (b + 1) * p.T);
  return rows;
}

/** Visibility (0 / −∞) plus the caller's bias for one query chunk, broadcasting to [B, Hkv, G, Sc, T]. */
async function chunkMask(backend: Backend, p: AttentionProblem, bias4: Tensor | null, i0: number, Sc: number, G: number): Promise<Tensor | null> {
  const vis = visibilityMask(p, i0, Sc);
  using visT = vis ? tensor(backend, vis.data, [p.B, vis.heads, 1, Sc, p.T]) : null;
  if (!bias4 || !p.biasShape) return visT ? reshape(visT, visT.shape) : null;
  const [Bb, Hb, Sb, Tb] = p.biasShape;
  using rows = Sb === 1 ? reshape(bias4, bias4.shape) : await slice(bias4, [0, 0, i0, 0], [Bb, Hb, Sc, Tb]);
  using bias5 = reshape(rows, [Bb, Hb === 1 ? 1 : p.Hkv, Hb === 1 ? 1 : G, Sb === 1 ? 1 : Sc, Tb]);
  return visT ? await add(visT, bias5) : reshape(bias5, bias5.shape);
}
