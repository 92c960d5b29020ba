// One flash-attention tile in WebAssembly SIMD: R query rows (scaled, contiguous [R, D]) against
// n ≤ TILE_KEYS key rows (any row stride), with the online softmax carried in m, l, acc:
//
//   1. scores   s[r, j] = q_r · k_j          2 rows × 4 keys per step: eight f32x4 accumulators
//                                             over D, folded into one vector of 4 scores
//   2. softmax  mask (sinks ∪ [lo, hi), keys < t0 + n), row max, p = e^(s − m_new) (polynomial
//               exp), l ← l·e^(m_old − m_new) + Σp, acc ← acc·e^(m_old − m_new)
//   3. values   acc[r] += Σ_j p[r, j]·v_j       2 rows × 16 channels per step: eight accumulators
//               (on an edge tile, only over the keys row r sees)
//
// Layout (bytes): q [R, D] f32; meta [R] × {sinkEnd, lo, hi} i32 in logical key positions;
// m, l [R] f32; acc [R, Dv] f32; s [R, TILE_KEYS] f32 scratch. D and Dv are multiples of 4.
// Step 1 reads key rows up to n rounded up to 4: the caller keeps 3 readable rows past the
// tile (their scores are masked, whatever they hold). Step 3 reads exactly n value rows.

import { wasm } from '@attnkit/tensor-core';

const { FunctionBuilder, assembleModule, block, br, brIf, f32, f32x4, forRange, get, i32, i32x4, i32x4Const, ifThen, horizontalMax, horizontalSum, reduce4, set, v128, vectorExp } =
  wasm;
type Expr = wasm.Expr;
type Local = wasm.Local;
type MemoryImport = wasm.MemoryImport;

/** Keys per tile (the stride of a score row). */
export const TILE_KEYS = 64;

/**
 * (q, R, D, k, kStride, v, vStride, Dv, n, t0, meta, m, l, acc, s, edge): pointers and strides
 * in bytes; edge = 1 when a mask edge passes between the rows inside the tile (see step 3).
 */
export type FlashTile = (...args: number[]) => void;

const NEG_INF = f32x4.splat(f32.const(-Infinity));
const ZERO = v128.const(new Array<number>(16).fill(0));

export function buildFlashTileModule(memory: MemoryImport): Uint8Array<ArrayBuffer> {
  const f = new FunctionBuilder('flashTile');
  const q = f.param('i32');
  const R = f.param('i32');
  const D = f.param('i32');
  const k = f.param('i32');
  const kStride = f.param('i32');
  const v = f.param('i32');
  const vStride = f.param('i32');
  const Dv = f.param('i32');
  const n = f.param('i32');
  const t0 = f.param('i32');
  const meta = f.param('i32');
  const m = f.param('i32');
  const l = f.param('i32');
  const acc = f.param('i32');
  const s = f.param('i32');
  const edge = f.param('i32');

  const r = f.local('i32');
  const j = f.local('i32');
  const o = f.local('i32'); // byte offset along a row
  const nPad = f.local('i32');
  const rowA = f.local('i32');
  const rowB = f.local('i32');
  const kj = f.local('i32');
  const kp = Array.from({ length: 4 }, () => f.local('i32')); // the step's four key rows
  const dBytes = f.local('i32');
  const dvBytes = f.local('i32');
  const sRow = f.local('i32');
  const vec = Array.from({ length: 8 }, () => f.local('v128'));
  const x = f.local('v128');
  const y = f.local('v128');
  const c = Array.from({ length: 4 }, () => f.local('v128'));
  const t1 = f.local('v128');
  const t2 = f.local('v128');
  const mx = f.local('f32');
  const mOld = f.local('f32');
  const mNew = f.local('f32');
  const corr = f.local('f32');
  // step 3 on an edge tile: the two rows' visible ranges, the key position, the keep masks
  const bounds = Array.from({ length: 6 }, () => f.local('i32')); // sinkEnd, lo, hi of rows A, B
  const tj = f.local('i32');
  const keepA = f.local('v128');
  const keepB = f.local('v128');
  const exp = vectorExp(f);
  const V = (i: number): Local => vec[i] as Local;
  const C = (i: number): Local => c[i] as Local;
  const zeroAll = (count: number): Expr => vec.slice(0, count).flatMap((a) => set(a, ZERO));
  const add = (a: Local, e: Expr): Expr => set(a, f32x4.add(get(a), e));
  const DB = get(dBytes); // row bytes of q and k
  const DvB = get(dvBytes);
  const sRowOf = (row: Expr): Expr => i32.add(get(s), i32.mul(row, i32.const(TILE_KEYS * 4)));
  const keyAt = (i: number): Expr => get(kp[i] as Local);
  // kp[i] = the address of key row j + i, computed once per step (not per loaded vector)
  const keyRows = seqOf(set(kj, i32.add(get(k), i32.mul(get(j), get(kStride)))), ...[0, 1, 2, 3].map((i) => set(kp[i] as Local, i > 0 ? i32.add(get(kp[i - 1] as Local), get(kStride)) : get(kj))));

  // --- 1. scores ------------------------------------------------------------------------------
  // the four key rows j..j+3 of this step start at kj, kj + kStride, …
  const scorePair = forRange(
    j,
    i32.const(0),
    get(nPad),
    4,
    keyRows,
    zeroAll(8),
    forRange(
      o,
      i32.const(0),
      DB,
      16,
      set(x, v128.load(i32.add(get(rowA), get(o)))),
      set(y, v128.load(i32.add(get(rowB), get(o)))),
      ...[0, 1, 2, 3].map((i) => set(C(i), v128.load(i32.add(keyAt(i), get(o))))),
      ...[0, 1, 2, 3].flatMap((i) => [add(V(i), f32x4.mul(get(x), get(C(i)))), add(V(4 + i), f32x4.mul(get(y), get(C(i))))]),
    ),
    v128.store(i32.add(sRowOf(get(r)), i32.mul(get(j), i32.const(4))), reduce4(V(0), V(1), V(2), V(3), t1, t2)),
    v128.store(i32.add(sRowOf(i32.add(get(r), i32.const(1))), i32.mul(get(j), i32.const(4))), reduce4(V(4), V(5), V(6), V(7), t1, t2)),
  );
  const scoreSingle = forRange(
    j,
    i32.const(0),
    get(nPad),
    4,
    keyRows,
    zeroAll(4),
    forRange(
      o,
      i32.const(0),
      DB,
      16,
      set(x, v128.load(i32.add(get(rowA), get(o)))),
      ...[0, 1, 2, 3].map((i) => add(V(i), f32x4.mul(get(x), v128.load(i32.add(keyAt(i), get(o)))))),
    ),
    v128.store(i32.add(sRowOf(get(r)), i32.mul(get(j), i32.const(4))), reduce4(V(0), V(1), V(2), V(3), t1, t2)),
  );
  const scores = seqOf(
    set(dBytes, i32.mul(get(D), i32.const(4))),
    set(dvBytes, i32.mul(get(Dv), i32.const(4))),
    set(nPad, i32.and(i32.add(get(n), i32.const(3)), i32.const(-4))),
    set(r, i32.const(0)),
    block(
      wasm.loop(
        brIf(1, i32.ge_s(i32.add(get(r), i32.const(1)), get(R))),
        set(rowA, i32.add(get(q), i32.mul(get(r), DB))),
        set(rowB, i32.add(get(rowA), DB)),
        scorePair,
        set(r, i32.add(get(r), i32.const(2))),
        br(0),
      ),
    ),
    ifThen(i32.lt_s(get(r), get(R)), [set(rowA, i32.add(get(q), i32.mul(get(r), DB))), scoreSingle]),
  );

  // --- 2. mask and online softmax, row by row -------------------------------------------------
  // visible: (t < sinkEnd ∨ lo ≤ t < hi) ∧ t < t0 + n, with t = t0 + j + lane
  const metaAt = (field: number): Expr => i32.load(i32.add(get(meta), i32.mul(get(r), i32.const(12))), 4 * field);
  const sinkV = V(4);
  const loV = V(5);
  const hiV = V(6);
  const endV = V(7);
  const tV = x;
  const sAt = (): Expr => i32.add(get(sRow), i32.mul(get(j), i32.const(4)));
  const softmax = forRange(
    r,
    i32.const(0),
    get(R),
    1,
    set(sRow, sRowOf(get(r))),
    set(sinkV, i32x4.splat(metaAt(0))),
    set(loV, i32x4.splat(metaAt(1))),
    set(hiV, i32x4.splat(metaAt(2))),
    set(endV, i32x4.splat(i32.add(get(t0), get(n)))),
    set(tV, i32x4.add(i32x4.splat(get(t0)), i32x4Const([0, 1, 2, 3]))),
    set(V(0), NEG_INF),
    forRange(
      j,
      i32.const(0),
      get(nPad),
      4,
      set(
        y,
        v128.and(
          v128.or(i32x4.lt_s(get(tV), get(sinkV)), v128.and(i32x4.ge_s(get(tV), get(loV)), i32x4.lt_s(get(tV), get(hiV)))),
          i32x4.lt_s(get(tV), get(endV)),
        ),
      ),
      set(y, v128.bitselect(v128.load(sAt()), NEG_INF, get(y))),
      v128.store(sAt(), get(y)),
      set(V(0), f32x4.max(get(V(0)), get(y))),
      set(tV, i32x4.add(get(tV), i32x4Const([4, 4, 4, 4]))),
    ),
    set(mx, horizontalMax(get(V(0)), t1)),
    ifThen(
      f32.eq(get(mx), f32.const(-Infinity)),
      // nothing visible in this tile: zero probabilities, state unchanged
      [forRange(j, i32.const(0), get(nPad), 4, v128.store(sAt(), ZERO)), br(1)],
    ),
    set(mOld, f32.load(i32.add(get(m), i32.mul(get(r), i32.const(4))))),
    set(mNew, f32.max(get(mOld), get(mx))),
    set(corr, f32x4.extract_lane(exp(f32x4.splat(f32.sub(get(mOld), get(mNew)))), 0)),
    set(V(1), f32x4.splat(get(mNew))),
    set(V(2), ZERO),
    forRange(j, i32.const(0), get(nPad), 4, set(y, exp(f32x4.sub(v128.load(sAt()), get(V(1))))), v128.store(sAt(), get(y)), add(V(2), get(y))),
    f32.store(i32.add(get(l), i32.mul(get(r), i32.const(4))), f32.add(f32.mul(f32.load(i32.add(get(l), i32.mul(get(r), i32.const(4)))), get(corr)), horizontalSum(get(V(2)), t1))),
    f32.store(i32.add(get(m), i32.mul(get(r), i32.const(4))), get(mNew)),
    ifThen(f32.lt(get(corr), f32.const(1)), [
      set(rowA, i32.add(get(acc), i32.mul(get(r), DvB))),
      set(V(3), f32x4.splat(get(corr))),
      forRange(o, i32.const(0), DvB, 16, v128.store(i32.add(get(rowA), get(o)), f32x4.mul(v128.load(i32.add(get(rowA), get(o))), get(V(3))))),
    ]),
  );

  // --- 3. acc += P·V ---------------------------------------------------------------------------
  // rows rowA/rowB of acc, probability rows sRow / sRow + TILE_KEYS·4; channel blocks of 16, then 4.
  // Every key of the tile enters (0·NaN is NaN, so a NaN value of a visible key reaches its row)
  // except on an edge tile, where each product is kept only for a key its row sees: a hidden
  // key's p is 0, and 0 times a NaN in its value must not reach the row.
  const B_ = (i: number): Local => bounds[i] as Local;
  const sees = (row: number): Expr =>
    i32.or(i32.lt_s(get(tj), get(B_(3 * row))), i32.and(i32.ge_s(get(tj), get(B_(3 * row + 1))), i32.lt_s(get(tj), get(B_(3 * row + 2)))));
  const keepOf = (row: number): Expr => i32x4.splat(i32.sub(i32.const(0), sees(row))); // all ones or all zeros
  const loadBounds = (row: number): Expr => seqOf(...[0, 1, 2].map((field) => set(B_(3 * row + field), i32.load(i32.add(get(meta), i32.mul(get(r), i32.const(12))), 12 * row + 4 * field))));
  const term = (p: Local, value: Expr, keep: Local | null): Expr => (keep ? v128.and(f32x4.mul(get(p), value), get(keep)) : f32x4.mul(get(p), value));
  const pvPair = (masked: boolean) => (width: number): Expr => {
    const vectors = width / 4;
    return seqOf(
      ...Array.from({ length: vectors }, (_, i) => [set(V(i), v128.load(i32.add(get(rowA), get(o)), 16 * i)), set(V(4 + i), v128.load(i32.add(get(rowB), get(o)), 16 * i))]).flat(),
      set(kj, i32.add(get(v), get(o))),
      forRange(
        j,
        i32.const(0),
        get(n),
        1,
        set(x, v128.load32_splat(i32.add(get(sRow), i32.mul(get(j), i32.const(4))))),
        set(y, v128.load32_splat(i32.add(get(sRow), i32.mul(get(j), i32.const(4))), TILE_KEYS * 4)),
        ...(masked ? [set(tj, i32.add(get(t0), get(j))), set(keepA, keepOf(0)), set(keepB, keepOf(1))] : []),
        ...Array.from({ length: vectors }, (_, i) => [
          set(C(i), v128.load(get(kj), 16 * i)),
          add(V(i), term(x, get(C(i)), masked ? keepA : null)),
          add(V(4 + i), term(y, get(C(i)), masked ? keepB : null)),
        ]).flat(),
        set(kj, i32.add(get(kj), get(vStride))),
      ),
      ...Array.from({ length: vectors }, (_, i) => [v128.store(i32.add(get(rowA), get(o)), get(V(i)), 16 * i), v128.store(i32.add(get(rowB), get(o)), get(V(4 + i)), 16 * i)]).flat(),
    );
  };
  const pvSingle = (masked: boolean) => (width: number): Expr => {
    const vectors = width / 4;
    return seqOf(
      ...Array.from({ length: vectors }, (_, i) => set(V(i), v128.load(i32.add(get(rowA), get(o)), 16 * i))),
      set(kj, i32.add(get(v), get(o))),
      forRange(
        j,
        i32.const(0),
        get(n),
        1,
        set(x, v128.load32_splat(i32.add(get(sRow), i32.mul(get(j), i32.const(4))))),
        ...(masked ? [set(tj, i32.add(get(t0), get(j))), set(keepA, keepOf(0))] : []),
        ...Array.from({ length: vectors }, (_, i) => add(V(i), term(x, v128.load(get(kj), 16 * i), masked ? keepA : null))),
        set(kj, i32.add(get(kj), get(vStride))),
      ),
      ...Array.from({ length: vectors }, (_, i) => v128.store(i32.add(get(rowA), get(o)), get(V(i)), 16 * i)),
    );
  };
  // channel blocks: 16 wide while they fit, then 4 wide
  const channels = (body: (width: number) => Expr): Expr =>
    seqOf(
      set(o, i32.const(0)),
      block(wasm.loop(brIf(1, i32.gt_s(i32.add(get(o), i32.const(64)), DvB)), body(16), set(o, i32.add(get(o), i32.const(64))), br(0))),
      block(wasm.loop(brIf(1, i32.ge_s(get(o), DvB)), body(4), set(o, i32.add(get(o), i32.const(16))), br(0))),
    );
  const values = (masked: boolean): Expr =>
    seqOf(
      set(r, i32.const(0)),
      block(
        wasm.loop(
          brIf(1, i32.ge_s(i32.add(get(r), i32.const(1)), get(R))),
          set(rowA, i32.add(get(acc), i32.mul(get(r), DvB))),
          set(rowB, i32.add(get(rowA), DvB)),
          set(sRow, sRowOf(get(r))),
          ...(masked ? [loadBounds(0), loadBounds(1)] : []),
          channels(pvPair(masked)),
          set(r, i32.add(get(r), i32.const(2))),
          br(0),
        ),
      ),
      ifThen(i32.lt_s(get(r), get(R)), [
        set(rowA, i32.add(get(acc), i32.mul(get(r), DvB))),
        set(sRow, sRowOf(get(r))),
        ...(masked ? [loadBounds(0)] : []),
        channels(pvSingle(masked)),
      ]),
    );

  f.body(scores, softmax, ifThen(get(edge), [values(true)], [values(false)]));
  return assembleModule(memory, [f]);
}

const seqOf = (...parts: readonly Expr[]): Expr => wasm.seq(...parts);
