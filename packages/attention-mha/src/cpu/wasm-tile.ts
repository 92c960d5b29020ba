// One flash-attention tile in WebAssembly SIMD: R query rows (scaled, contiguous [R, D]) against
// n ≤ TILE_KEYS key rows (any row stride), with the online softmax carried in m, l, acc:
//
//   1. scores   s[r, j] = q_r · k_j          2 rows × 4 keys per step: eight f32x4 accumulators
//                                             over D, folded into one vector of 4 scores
//   2. softmax  mask (sinks ∪ [lo, hi), keys < t0 + n), row max, p = 2^(s − m_new) (polynomial
//               exp2: q comes scaled by log2 e, LOG2_SCORES), l ← l·2^(m_old − m_new) + Σp,
//               acc ← acc·2^(m_old − m_new)
//   3. values   acc[r] += Σ_j p[r, j]·v_j       2 rows × 16 channels per step: eight accumulators
//               (on an edge tile, only over the keys row r sees)
//
// A module is built for one (D, Dv): the loop over D (scores, D ≤ 256, fenced: see dotPair) and
// the loop over channel blocks (values) are unrolled, so every load and store has a constant
// offset from a row pointer (V8 folds it into the address) and no loop counter competes with the
// f32x4 work for issue slots. Where the engine validates relaxed SIMD, multiply-adds are
// `f32x4.relaxed_madd` (one FMA instead of a multiply and an add); elsewhere mul + add — FMA is
// the faster build in every part of the tile (BENCHMARKS.md, issue 12, session 6).
//
// Layout (bytes): q [R, D] f32 (times scale · log2 e); meta [R] × {sinkEnd, lo, hi} i32 in logical key positions;
// m, l [R] f32; acc [R, Dv] f32; s [R, TILE_KEYS] f32 scratch. D and Dv are multiples of 4 and
// equal the module's. Only the n key and value rows of the tile are read (the score step's
// last group of 4 keys repeats row j for the lanes past n; their scores are masked), so K/V can
// be read in place from a tensor's storage.

import { wasm } from '@attnkit/tensor-core';
import { type QueueCallees, buildCopyRows, buildFill, buildFinishRows, buildFlashQueue, buildFlashSpan, buildTransposeKeyTiles } from './wasm-rows.js';
import { buildDecodeSweep } from './wasm-sweep.js';

const { FunctionBuilder, assembleModule, block, br, brIf, f32, f32x4, forRange, get, i32, i32x4, i32x4Const, ifThen, horizontalMax, horizontalSum, reduce4, select, set, v128, vectorExp2 } =
  wasm;
type Expr = wasm.Expr;
type Local = wasm.Local;
type MemoryImport = wasm.MemoryImport;

/** flashSpan's and decodeSweep's indices among the module's functions. */
const FLASH_SPAN = 1;
const DECODE_SWEEP = 5;
/** The plumbing's indices among the module's functions, for the queues' other call kinds. */
const QUEUE_CALLEES: QueueCallees = { copyRows: 3, finishRows: 4, transposeKeyTiles: 7, fill: 8 };

/**
 * What the staged queries are multiplied by beside the softmax scale: log2 e, so that the scores
 * are in log2 units and the tile's exponentials are 2^x; m is then in log2 units too (the
 * natural-log max is m · ln 2: lse = m · ln 2 + ln l).
 */
export const LOG2_SCORES = Math.LOG2E;

/** Keys per tile (the stride of a score row). */
export const TILE_KEYS = 64;

/** The largest D whose score dot products are unrolled (code: ~100 bytes per 16-byte step, twice). */
const UNROLL_MAX_D = 256;

/** A tile flag: a mask edge passes between the rows inside the tile (see step 3). */
export const TILE_EDGE = 1;
/**
 * A tile flag: K is packed in transposed tiles ([D][TILE_KEYS] per tile of 64 keys, k at the
 * first, kStride = D·4: `transposeKeyTiles`), for the K-tile score step.
 */
export const TILE_K_TRANSPOSED = 2;

/**
 * (q, R, D, k, kStride, v, vStride, Dv, n, t0, meta, m, l, acc, s, flags): pointers and strides
 * in bytes; flags: TILE_EDGE | TILE_K_TRANSPOSED.
 */
export type FlashTile = (...args: number[]) => void;
/** (q, R, D, k, kStride, v, vStride, Dv, from, to, meta, m, l, acc, s, flags): the tiles of keys [from, to); R = 0 only reads the K/V rows. */
export type FlashSpan = (...args: number[]) => void;

/** The compiled tile for head dims D and Dv on `heap` (built once per heap and shape). */
export function flashTileModule(heap: wasm.WasmHeap, D: number, Dv: number): Promise<wasm.WasmKernelModule> {
  const fma = heap.relaxedSimd;
  return heap.module(`attention-mha/flash-tile/${D}x${Dv}${fma ? '/fma' : ''}`, (memory) => buildFlashTileModule(memory, { D, Dv, fma }));
}

const NEG_INF = f32x4.splat(f32.const(-Infinity));
const ZERO = v128.const(new Array<number>(16).fill(0));

export interface FlashTileShape {
  readonly D: number;
  readonly Dv: number;
  /** Use `f32x4.relaxed_madd` (the engine must validate relaxed SIMD). */
  readonly fma: boolean;
}

export function buildFlashTileModule(memory: MemoryImport, shape: FlashTileShape): Uint8Array<ArrayBuffer> {
  const { D: DIM, Dv: DIM_V, fma } = shape;
  const f = new FunctionBuilder('flashTile');
  const q = f.param('i32');
  const R = f.param('i32');
  f.param('i32'); // D: the module's
  const k = f.param('i32');
  const kStride = f.param('i32');
  const v = f.param('i32');
  const vStride = f.param('i32');
  f.param('i32'); // Dv: the module's
  const n = f.param('i32');
  const t0 = f.param('i32');
  const meta = f.param('i32');
  const m = f.param('i32');
  const l = f.param('i32');
  const acc = f.param('i32');
  const s = f.param('i32');
  const flags = f.param('i32');
  const isEdge = i32.and(get(flags), i32.const(TILE_EDGE));
  const kTiles = i32.and(get(flags), i32.const(TILE_K_TRANSPOSED));

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
  const plain = f.local('i32'); // every lane of the tile visible: no mask in step 2
  const ka = f.local('i32'); // step 3 on an edge tile: keys [ka, kz) of the tile seen by both rows
  const kz = f.local('i32');
  const keepA = f.local('v128');
  const keepB = f.local('v128');
  // The scores are in log2 units (the queries come scaled by scale·log2 e, LOG2_SCORES), so every
  // p is 2^(s − m_new): no Cody–Waite split and no multiply by log2 e in the exp, 6 of its 18
  // instructions. Every argument is ≤ 0 (s − m_new, m_old − m_new) or NaN: no overflow clamp,
  // and below −126 (a hidden key's −∞) 2^−126, which the masked P·V drops and which adds
  // < 2^−119 to an l ≥ 1.
  const exp = vectorExp2(f, { fma });
  const V = (i: number): Local => vec[i] as Local;
  const C = (i: number): Local => c[i] as Local;
  const add = (a: Local, e: Expr): Expr => set(a, f32x4.add(get(a), e));
  /** a += b·c */
  const madd = (a: Local, b: Expr, cc: Expr): Expr => set(a, fma ? f32x4.relaxed_madd(b, cc, get(a)) : f32x4.add(get(a), f32x4.mul(b, cc)));
  const DB = get(dBytes); // row bytes of q and k
  const DvB = get(dvBytes);
  const sRowOf = (row: Expr): Expr => i32.add(get(s), i32.mul(row, i32.const(TILE_KEYS * 4)));
  const keyAt = (i: number): Local => kp[i] as Local;
  // kp[i] = the address of key row j + i; in the tile's last group of 4 when n is not a multiple
  // of 4, rows past n repeat the row before (a select per row, kept out of the main loop, where
  // it measured 9% of the tile)
  const keyRows = (clamp: boolean): Expr =>
    seqOf(
      set(kj, i32.add(get(k), i32.mul(get(j), get(kStride)))),
      set(keyAt(0), get(kj)),
      ...[1, 2, 3].map((i) => {
        const next = i32.add(get(keyAt(i - 1)), get(kStride));
        return set(keyAt(i), clamp ? select(next, get(keyAt(i - 1)), i32.lt_s(i32.add(get(j), i32.const(i)), get(n))) : next);
      }),
    );
  /** `group` for the key groups j = 0, 4, … below n: whole groups, then a clamped partial one. */
  const keyGroups = (group: Expr): Expr =>
    seqOf(forRange(j, i32.const(0), i32.and(get(n), i32.const(-4)), 4, keyRows(false), group), ifThen(i32.lt_s(get(j), get(nPad)), [keyRows(true), group]));

  // --- 1. scores ------------------------------------------------------------------------------
  // One 16-byte step of the pair's dot products: 2 query and 4 key vectors, 8 multiply-adds.
  const pairStep = (at: (row: Local) => Expr, offset: number): Expr[] => [
    set(x, v128.load(at(rowA), offset)),
    set(y, v128.load(at(rowB), offset)),
    ...[0, 1, 2, 3].flatMap((i) => [set(C(i), v128.load(at(keyAt(i)), offset)), madd(V(i), get(x), get(C(i))), madd(V(4 + i), get(y), get(C(i)))]),
  ];
  // Up to UNROLL_MAX_D, D is unrolled: every load at a constant offset from its row pointer, no
  // loop counter, no back edge. Each step is fenced off by a branch that is never taken (a key
  // row's address is a multiple of 4, the constant odd): within one basic block V8 issues all the
  // block's loads first and its FMAs after, so an unfenced unroll (by 2, or fully) holds 12+
  // loaded vectors beside the 8 accumulators and spills them — 1.2–1.45× slower than the loop.
  // Fenced, a step is 6 loads + 8 FMAs + one compare-and-branch: the tile bench, 30 rounds
  // alternating with the loop, interior 1.04–1.05× at d = 64 and 128, edge 1.02–1.03×.
  const dotPair =
    DIM <= UNROLL_MAX_D
      ? block(
          ...Array.from({ length: DIM / 4 }, (_, u) => [
            ...pairStep((row) => get(row), 16 * u),
            ...(u + 1 < DIM / 4 ? [brIf(0, i32.eq(get(keyAt(0)), i32.const(-1 - 16 * u)))] : []),
          ]).flat(),
        )
      : forRange(o, i32.const(0), DB, 16, ...pairStep((row) => i32.add(get(row), get(o)), 0));
  const scorePair = keyGroups(
    seqOf(
      ...vec.map((a) => set(a, ZERO)),
      dotPair,
      v128.store(i32.add(sRowOf(get(r)), i32.mul(get(j), i32.const(4))), reduce4(V(0), V(1), V(2), V(3), t1, t2)),
      v128.store(i32.add(sRowOf(i32.add(get(r), i32.const(1))), i32.mul(get(j), i32.const(4))), reduce4(V(4), V(5), V(6), V(7), t1, t2)),
    ),
  );
  const scoreSingle = keyGroups(
    seqOf(
      ...vec.slice(0, 4).map((a) => set(a, ZERO)),
      forRange(
        o,
        i32.const(0),
        DB,
        16,
        set(x, v128.load(i32.add(get(rowA), get(o)))),
        ...[0, 1, 2, 3].map((i) => madd(V(i), get(x), v128.load(i32.add(get(keyAt(i)), get(o))))),
      ),
      v128.store(i32.add(sRowOf(get(r)), i32.mul(get(j), i32.const(4))), reduce4(V(0), V(1), V(2), V(3), t1, t2)),
    ),
  );
  // K in transposed tiles (prefill's packing): `rows` query rows × 16 keys per block, each query
  // element splatted against 4 vectors of 4 keys' elements, the scores accumulating in their
  // lanes — no horizontal reduction. 4 elements of D per loop step, each fenced off as above;
  // scores alone 1.07–1.10× the fenced row-major steps (the tile bench, 20 rounds alternating).
  const qEnd = f.local('i32');
  const kTileBlocks = (pair: boolean): Expr =>
    forRange(
      j,
      i32.const(0),
      get(nPad),
      16,
      ...vec.slice(0, pair ? 8 : 4).map((a) => set(a, ZERO)),
      set(kj, i32.add(get(k), i32.shl(get(j), i32.const(2)))), // column j of the tile
      set(o, get(rowA)),
      set(qEnd, i32.add(get(rowA), DB)),
      block(
        wasm.loop(
          ...[0, 1, 2, 3].flatMap((u) => [
            set(x, v128.load32_splat(get(o), 4 * u)),
            ...(pair ? [set(y, v128.load32_splat(get(o), 4 * DIM + 4 * u))] : []),
            ...[0, 1, 2, 3].flatMap((i) =>
              pair
                ? [set(C(i), v128.load(get(kj), TILE_KEYS * 4 * u + 16 * i)), madd(V(i), get(x), get(C(i))), madd(V(4 + i), get(y), get(C(i)))]
                : [madd(V(i), get(x), v128.load(get(kj), TILE_KEYS * 4 * u + 16 * i))],
            ),
            ...(u < 3 ? [brIf(1, i32.eq(get(kj), i32.const(-1 - 16 * u)))] : []),
          ]),
          set(kj, i32.add(get(kj), i32.const(TILE_KEYS * 16))),
          set(o, i32.add(get(o), i32.const(16))),
          brIf(0, i32.lt_s(get(o), get(qEnd))),
        ),
      ),
      ...[0, 1, 2, 3].flatMap((i) => [
        v128.store(i32.add(sRowOf(get(r)), i32.shl(get(j), i32.const(2))), get(V(i)), 16 * i),
        ...(pair ? [v128.store(i32.add(sRowOf(get(r)), i32.shl(get(j), i32.const(2))), get(V(4 + i)), TILE_KEYS * 4 + 16 * i)] : []),
      ]),
    );
  const scores = seqOf(
    set(dBytes, i32.const(4 * DIM)),
    set(dvBytes, i32.const(4 * DIM_V)),
    set(nPad, i32.and(i32.add(get(n), i32.const(3)), i32.const(-4))),
    set(r, i32.const(0)),
    block(
      wasm.loop(
        brIf(1, i32.ge_s(i32.add(get(r), i32.const(1)), get(R))),
        set(rowA, i32.add(get(q), i32.mul(get(r), DB))),
        set(rowB, i32.add(get(rowA), DB)),
        ifThen(kTiles, [kTileBlocks(true)], [scorePair]),
        set(r, i32.add(get(r), i32.const(2))),
        br(0),
      ),
    ),
    ifThen(i32.lt_s(get(r), get(R)), [set(rowA, i32.add(get(q), i32.mul(get(r), DB))), ifThen(kTiles, [kTileBlocks(false)], [scoreSingle])]),
  );

  // --- 2. mask and online softmax, row by row -------------------------------------------------
  // visible: (t < sinkEnd ∨ lo ≤ t < hi) ∧ t < t0 + n, with t = t0 + j + lane. A tile without a
  // mask edge (edge = 0) whose n is a multiple of 4 has every lane visible: its max pass is a
  // load and a `pmax` per 4 scores (the mask and the NaN-propagating f32x4.max, ~8 x64
  // instructions, were 40% of the softmax). The running max ignores NaN scores (pmax keeps its
  // first operand); a NaN still makes its p, so l and acc, NaN — and a tile whose visible scores
  // are all NaN is caught by the scan below instead of passing for an empty one.
  const metaAt = (field: number): Expr => i32.load(i32.add(get(meta), i32.mul(get(r), i32.const(12))), 4 * field);
  const sinkV = V(4);
  const loV = V(5);
  const hiV = V(6);
  const endV = V(7);
  const tV = x;
  const sAt = (): Expr => i32.add(get(sRow), i32.mul(get(j), i32.const(4)));
  const maskedMax = seqOf(
    set(sinkV, i32x4.splat(metaAt(0))),
    set(loV, i32x4.splat(metaAt(1))),
    set(hiV, i32x4.splat(metaAt(2))),
    set(endV, i32x4.splat(i32.add(get(t0), get(n)))),
    set(tV, i32x4.add(i32x4.splat(get(t0)), i32x4Const([0, 1, 2, 3]))),
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
      set(V(0), f32x4.pmax(get(V(0)), get(y))),
      set(tV, i32x4.add(get(tV), i32x4Const([4, 4, 4, 4]))),
    ),
  );
  const plainMax = forRange(j, i32.const(0), get(nPad), 4, set(V(0), f32x4.pmax(get(V(0)), v128.load(sAt()))));
  const softmax = forRange(
    r,
    i32.const(0),
    get(R),
    1,
    set(sRow, sRowOf(get(r))),
    set(V(0), NEG_INF),
    ifThen(get(plain), [plainMax], [maskedMax]),
    set(mx, horizontalMax(get(V(0)), t1)),
    ifThen(f32.eq(get(mx), f32.const(-Infinity)), [
      // nothing visible in this tile (or only NaN scores): zero probabilities, state unchanged —
      // unless a NaN is there, which makes the row NaN
      set(V(2), ZERO),
      forRange(j, i32.const(0), get(nPad), 4, set(y, v128.load(sAt())), set(V(2), v128.or(get(V(2)), f32x4.ne(get(y), get(y))))),
      ifThen(i32.eqz(v128.any_true(get(V(2)))), [forRange(j, i32.const(0), get(nPad), 4, v128.store(sAt(), ZERO)), br(2)]),
      set(mx, f32.const(Number.NaN)),
    ]),
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
  // rows rowA/rowB of acc, probability rows sRow / sRow + TILE_KEYS·4; channel blocks of 16, then
  // 4, at constant offsets; kj walks the value rows, o the probabilities (bytes). Every key of the
  // tile enters (0·NaN is NaN, so a NaN value of a visible key reaches its row) except on an edge
  // tile, where each product is kept only for a key its row sees (tj walks the key positions): a
  // hidden key's p is 0, and 0 times a NaN in its value must not reach the row.
  const blocks: { off: number; vectors: number }[] = [];
  for (let off = 0; off < 4 * DIM_V; ) {
    const vectors = off + 64 <= 4 * DIM_V ? 4 : 1;
    blocks.push({ off, vectors });
    off += 16 * vectors;
  }
  const B_ = (i: number): Local => bounds[i] as Local;
  const sees = (row: number): Expr =>
    i32.or(i32.lt_s(get(tj), get(B_(3 * row))), i32.and(i32.ge_s(get(tj), get(B_(3 * row + 1))), i32.lt_s(get(tj), get(B_(3 * row + 2)))));
  const keepOf = (row: number): Expr => i32x4.splat(i32.sub(i32.const(0), sees(row))); // all ones or all zeros
  const loadBounds = (row: number): Expr => seqOf(...[0, 1, 2].map((field) => set(B_(3 * row + field), i32.load(i32.add(get(meta), i32.mul(get(r), i32.const(12))), 12 * row + 4 * field))));
  /** a += p·value, or on an edge tile a += (p·value) & keep */
  const accumulate = (a: Local, p: Local, value: Expr, keep: Local | null): Expr => (keep ? add(a, v128.and(f32x4.mul(get(p), value), get(keep))) : madd(a, get(p), value));
  /**
   * acc rows += p·V over keys [from, to) of the tile for one channel block, kj at key `from`'s
   * value row (and tj at its position when masked): rowB too when `pair`.
   */
  const pvLoop = (pair: boolean, masked: boolean, off: number, vectors: number, from: Expr, to: Expr): Expr => {
    const lanes = Array.from({ length: vectors }, (_, i) => i);
    return forRange(
      o,
      i32.shl(from, i32.const(2)),
      i32.shl(to, i32.const(2)),
      4,
      set(x, v128.load32_splat(i32.add(get(sRow), get(o)))),
      ...(pair ? [set(y, v128.load32_splat(i32.add(get(sRow), get(o)), TILE_KEYS * 4))] : []),
      ...(masked ? [set(keepA, keepOf(0)), ...(pair ? [set(keepB, keepOf(1))] : []), set(tj, i32.add(get(tj), i32.const(1)))] : []),
      ...lanes.flatMap((i) =>
        pair
          ? [set(C(i), v128.load(get(kj), off + 16 * i)), accumulate(V(i), x, get(C(i)), masked ? keepA : null), accumulate(V(4 + i), y, get(C(i)), masked ? keepB : null)]
          : [accumulate(V(i), x, v128.load(get(kj), off + 16 * i), masked ? keepA : null)],
      ),
      set(kj, i32.add(get(kj), get(vStride))),
    );
  };
  /**
   * One channel block of the row (pair) at rowA (rowB). On an edge tile the keys [ka, kz) that
   * every row of the pair sees take the plain loop, only the rest the masked one: on a causal
   * diagonal that is a key or two per pair instead of the whole tile (masked keys cost 1.9×).
   */
  const pvBlock = (pair: boolean, masked: boolean) => ({ off, vectors }: { off: number; vectors: number }): Expr => {
    const lanes = Array.from({ length: vectors }, (_, i) => i);
    const rowsOf = (i: number): [number, Local][] => (pair ? [[i, rowA], [4 + i, rowB]] : [[i, rowA]]);
    return seqOf(
      ...lanes.flatMap((i) => rowsOf(i).map(([a, row]) => set(V(a), v128.load(get(row), off + 16 * i)))),
      set(kj, get(v)),
      ...(masked
        ? [
            set(tj, get(t0)),
            pvLoop(pair, true, off, vectors, i32.const(0), get(ka)),
            pvLoop(pair, false, off, vectors, get(ka), get(kz)),
            set(tj, i32.add(get(t0), get(kz))),
            pvLoop(pair, true, off, vectors, get(kz), get(n)),
          ]
        : [pvLoop(pair, false, off, vectors, i32.const(0), get(n))]),
      ...lanes.flatMap((i) => rowsOf(i).map(([a, row]) => v128.store(get(row), get(V(a)), off + 16 * i))),
    );
  };
  const maxI = (a: Expr, b: Expr): Expr => select(a, b, i32.gt_s(a, b));
  const minI = (a: Expr, b: Expr): Expr => select(a, b, i32.lt_s(a, b));
  /** ka, kz: the keys of the tile (from 0) that rows A (and B) all see, from their [lo, hi). */
  const commonKeys = (pair: boolean): Expr =>
    seqOf(
      set(ka, minI(maxI(i32.sub(pair ? maxI(get(B_(1)), get(B_(4))) : get(B_(1)), get(t0)), i32.const(0)), get(n))),
      set(kz, minI(maxI(i32.sub(pair ? minI(get(B_(2)), get(B_(5))) : get(B_(2)), get(t0)), get(ka)), get(n))),
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
          ...(masked ? [loadBounds(0), loadBounds(1), commonKeys(true)] : []),
          ...blocks.map(pvBlock(true, masked)),
          set(r, i32.add(get(r), i32.const(2))),
          br(0),
        ),
      ),
      ifThen(i32.lt_s(get(r), get(R)), [
        set(rowA, i32.add(get(acc), i32.mul(get(r), DvB))),
        set(sRow, sRowOf(get(r))),
        ...(masked ? [loadBounds(0), commonKeys(false)] : []),
        ...blocks.map(pvBlock(false, masked)),
      ]),
    );

  const plainTile = set(plain, i32.and(i32.eqz(isEdge), i32.eqz(i32.and(get(n), i32.const(3)))));
  f.body(plainTile, scores, softmax, ifThen(isEdge, [values(true)], [values(false)]));
  // function indices: flashTile 0, flashSpan 1 (FLASH_SPAN), the prefill plumbing, decode's
  // token-order sweep (DECODE_SWEEP) and its queue, then prefill's K transpose and the fill
  return assembleModule(memory, [
    f,
    buildFlashSpan(TILE_KEYS),
    buildFlashQueue(FLASH_SPAN, QUEUE_CALLEES),
    buildCopyRows(),
    buildFinishRows(),
    buildDecodeSweep(0, DIM, DIM_V),
    buildFlashQueue(DECODE_SWEEP, QUEUE_CALLEES, 'sweepQueue'),
    buildTransposeKeyTiles(TILE_KEYS),
    buildFill(),
  ]);
}

const seqOf = (...parts: readonly Expr[]): Expr => wasm.seq(...parts);
