// The prefill plumbing of the flash tile module, in WebAssembly so that it runs on every thread
// instead of in JavaScript on the calling one while the workers wait:
//
//   flashQueue  the threads' shared work queue: each thread takes the next job (a row block's
//               list of flashSpan calls, or a piece of the plumbing) with an atomic add on a
//               counter in the heap, until none is left, so the threads finish together whatever
//               the jobs' lengths (a causal triangle's row blocks differ 64-fold) and whichever
//               thread starts late; a job waits for the jobs it depends on (a kv head's tiles
//               for its staging and packing, its finish for its tiles), so a whole prefill is
//               one hand-off to the workers
//   copyRows    rows of 16-byte multiples from one stride to another, times a scale: queries
//               scaled into row order, V rows packed head-major
//   transposeKeyTiles  K rows packed head-major in transposed tiles ([D][TILE_KEYS] per tile of
//               64 keys), what the tile's K-tile score step reads
//   finishRows  out = acc / l per row (zeros where l = 0: a row that saw no key)
//   flashSpan   the tile over a key span, one tile call per TILE_KEYS keys (and decode's
//               warm-up read of a tile's K/V rows)
//
//   fill        f32 values over a region: the softmax state's m, l and acc before the first chunk
//
// Tables (bytes): a call is 16 i32 — flashSpan's arguments, the score scratch (argument 14)
// replaced by the running thread's own and standing for the call's kind (0: flashSpan; other
// kinds call the plumbing: CallKind); a job is {first call, end call, wait counter, wait count,
// signal counter} (8 i32), the counters i32s of the table.

import { wasm } from '@attnkit/tensor-core';

const { FunctionBuilder, block, br, brIf, call, f32, f32x4, forRange, get, i32, ifThen, select, set, shuffle32, v128 } = wasm;

/** Bytes per call entry: 16 i32, flashSpan's arguments or another kind's (CALL_KIND). */
export const CALL_BYTES = 64;
/** Bytes per job entry: {first call, end call, wait counter, wait count, signal counter, unused ×3}. */
export const JOB_BYTES = 32;
/** flashSpan's argument that the queue replaces with the thread's score scratch. */
export const SCORE_ARG = 14;
/** The slot of a call entry that says its kind: flashSpan's score argument, which the queue replaces. */
export const KIND_ARG = SCORE_ARG;

/**
 * What a call entry of the queue runs (its slot KIND_ARG): the span function the queue is built on
 * (flashSpan, or decodeSweep), or one of the prefill plumbing's functions with the entry's first
 * slots as its arguments (an f32 argument read as f32 from its slot).
 */
export const CallKind = { span: 0, copyRows: 1, transposeKeyTiles: 2, finishRows: 3, fill: 4 } as const;

/** The module's function indices of the plumbing the queue calls (CallKind 1–4). */
export interface QueueCallees {
  readonly copyRows: number;
  readonly transposeKeyTiles: number;
  readonly finishRows: number;
  readonly fill: number;
}

/**
 * `flashQueue(calls, jobs, count, counter, s)`: runs jobs [next, count) of the job table, `next`
 * taken atomically from the i32 at `counter` (0 before the first thread starts), each job's calls
 * in order on this thread (flashSpan's with score scratch `s`; or the plumbing's, by each call's
 * kind). A job first waits until the i32 at its wait counter (a byte address) reaches its wait
 * count — the jobs it depends on, done on any thread: a kv head's tiles wait for that head's
 * staging and K/V packing, its finish for its tiles — and adds one to its signal counter when its
 * calls are done. A job depends only on jobs before it in the table, which are taken before it
 * and wait for none after them: every wait ends.
 */
export function buildFlashQueue(spanIndex: number, callees: QueueCallees, name = 'flashQueue'): wasm.FunctionBuilder {
  const f = new FunctionBuilder(name);
  const calls = f.param('i32');
  const jobs = f.param('i32');
  const count = f.param('i32');
  const counter = f.param('i32');
  const s = f.param('i32');
  const job = f.local('i32');
  const c = f.local('i32');
  const end = f.local('i32');
  const waitAt = f.local('i32');
  const waitFor = f.local('i32');
  const signalAt = f.local('i32');
  const at = f.local('i32');
  const kind = f.local('i32');
  const arg = (i: number): wasm.Expr => (i === SCORE_ARG ? get(s) : i32.load(get(at), 4 * i));
  const args = (n: number): wasm.Expr[] => Array.from({ length: n }, (_, i) => i32.load(get(at), 4 * i));
  const f32Arg = (i: number): wasm.Expr => f32.load(get(at), 4 * i);
  const is = (k: number): wasm.Expr => i32.eq(get(kind), i32.const(k));
  f.body(
    block(
      wasm.loop(
        set(job, i32.atomic_rmw_add(get(counter), i32.const(1))),
        brIf(1, i32.ge_s(get(job), get(count))),
        set(at, i32.add(get(jobs), i32.mul(get(job), i32.const(JOB_BYTES)))),
        set(c, i32.load(get(at))),
        set(end, i32.load(get(at), 4)),
        set(waitAt, i32.load(get(at), 8)),
        set(waitFor, i32.load(get(at), 12)),
        set(signalAt, i32.load(get(at), 16)),
        // wait for the jobs this one depends on (an atomic read: adding 0)
        block(wasm.loop(brIf(1, i32.ge_s(i32.atomic_rmw_add(get(waitAt), i32.const(0)), get(waitFor))), br(0))),
        block(
          wasm.loop(
            brIf(1, i32.ge_s(get(c), get(end))),
            set(at, i32.add(get(calls), i32.mul(get(c), i32.const(CALL_BYTES)))),
            set(kind, i32.load(get(at), 4 * KIND_ARG)),
            ifThen(
              i32.eqz(get(kind)),
              [call(spanIndex, ...Array.from({ length: CALL_BYTES / 4 }, (_, i) => arg(i)))],
              [
                ifThen(is(CallKind.copyRows), [call(callees.copyRows, ...args(6), f32Arg(6))]),
                ifThen(is(CallKind.transposeKeyTiles), [call(callees.transposeKeyTiles, ...args(5))]),
                ifThen(is(CallKind.finishRows), [call(callees.finishRows, ...args(8))]),
                ifThen(is(CallKind.fill), [call(callees.fill, ...args(2), f32Arg(2))]),
              ],
            ),
            set(c, i32.add(get(c), i32.const(1))),
            br(0),
          ),
        ),
        set(c, i32.atomic_rmw_add(get(signalAt), i32.const(1))), // (c is free again)
        br(0),
      ),
    ),
  );
  return f;
}

/** `fill(dst, bytes, value)`: bytes (a multiple of 4) of f32 `value` at dst, nothing past them. */
export function buildFill(): wasm.FunctionBuilder {
  const f = new FunctionBuilder('fill');
  const dst = f.param('i32');
  const bytes = f.param('i32');
  const value = f.param('f32');
  const o = f.local('i32');
  const end = f.local('i32');
  const x = f.local('v128');
  f.body(
    set(x, f32x4.splat(get(value))),
    set(end, i32.add(get(dst), i32.and(get(bytes), i32.const(-16)))),
    wasm.forRange(o, get(dst), get(end), 16, v128.store(get(o), get(x))),
    wasm.forRange(o, get(end), i32.add(get(dst), get(bytes)), 4, f32.store(get(o), get(value))),
  );
  return f;
}

/** `copyRows(src, srcStride, dst, dstStride, rows, bytes, scale)`: dst row = scale · src row (bytes a multiple of 16). */
export function buildCopyRows(): wasm.FunctionBuilder {
  const f = new FunctionBuilder('copyRows');
  const src = f.param('i32');
  const srcStride = f.param('i32');
  const dst = f.param('i32');
  const dstStride = f.param('i32');
  const rows = f.param('i32');
  const bytes = f.param('i32');
  const scale = f.param('f32');
  const r = f.local('i32');
  const o = f.local('i32');
  const k = f.local('v128');
  f.body(
    set(k, f32x4.splat(get(scale))),
    wasm.forRange(
      r,
      i32.const(0),
      get(rows),
      1,
      wasm.forRange(o, i32.const(0), get(bytes), 16, v128.store(i32.add(get(dst), get(o)), f32x4.mul(v128.load(i32.add(get(src), get(o))), get(k)))),
      set(src, i32.add(get(src), get(srcStride))),
      set(dst, i32.add(get(dst), get(dstStride))),
    ),
  );
  return f;
}

/**
 * `transposeKeyTiles(src, srcStride, dst, keys, bytes)`: key rows src + t·srcStride (bytes: 4·D,
 * a multiple of 16) into transposed tiles of KEY_TILE keys (a power of 2) at dst, key t's
 * element d at dst + 4·(⌊t/64⌋·64·D + d·64 + t mod 64) for tiles of 64. Four keys at a time,
 * 4×4 blocks transposed by shuffles; past the last key the rows repeat it (those lanes are never
 * visible).
 */
export function buildTransposeKeyTiles(KEY_TILE: number): wasm.FunctionBuilder {
  const f = new FunctionBuilder('transposeKeyTiles');
  const src = f.param('i32');
  const srcStride = f.param('i32');
  const dst = f.param('i32');
  const keys = f.param('i32');
  const bytes = f.param('i32');
  const t = f.local('i32');
  const o = f.local('i32');
  const base = f.local('i32');
  const at = f.local('i32');
  const rows = Array.from({ length: 4 }, () => f.local('i32'));
  const x = Array.from({ length: 4 }, () => f.local('v128'));
  const lo = f.local('v128');
  const hi = f.local('v128');
  const lo2 = f.local('v128');
  const hi2 = f.local('v128');
  const last = i32.sub(get(keys), i32.const(1));
  const rowOf = (i: number): wasm.Expr => {
    const key = i32.add(get(t), i32.const(i));
    return i32.add(get(src), i32.mul(select(key, last, i32.lt_s(key, get(keys))), get(srcStride)));
  };
  const X = (i: number): wasm.Local => x[i] as wasm.Local;
  f.body(
    wasm.forRange(
      t,
      i32.const(0),
      get(keys),
      4,
      ...rows.map((row, i) => set(row, rowOf(i))),
      // tile ⌊t/64⌋ is 64·bytes long; key t is lane t mod 64 of each of its D rows of 256 bytes
      set(base, i32.add(get(dst), i32.add(i32.mul(i32.and(get(t), i32.const(-KEY_TILE)), get(bytes)), i32.shl(i32.and(get(t), i32.const(KEY_TILE - 1)), i32.const(2))))),
      wasm.forRange(
        o,
        i32.const(0),
        get(bytes),
        16,
        ...rows.map((row, i) => set(X(i), v128.load(i32.add(get(row), get(o))))),
        set(lo, shuffle32(get(X(0)), get(X(1)), [0, 4, 1, 5])), // a0 b0 a1 b1
        set(lo2, shuffle32(get(X(2)), get(X(3)), [0, 4, 1, 5])), // c0 d0 c1 d1
        set(hi, shuffle32(get(X(0)), get(X(1)), [2, 6, 3, 7])), // a2 b2 a3 b3
        set(hi2, shuffle32(get(X(2)), get(X(3)), [2, 6, 3, 7])), // c2 d2 c3 d3
        // element d = o/4 + i of the four keys goes to row d of the tile, base + d·256
        set(at, i32.add(get(base), i32.shl(get(o), i32.const(6)))),
        v128.store(get(at), shuffle32(get(lo), get(lo2), [0, 1, 4, 5])),
        v128.store(get(at), shuffle32(get(lo), get(lo2), [2, 3, 6, 7]), 4 * KEY_TILE),
        v128.store(get(at), shuffle32(get(hi), get(hi2), [0, 1, 4, 5]), 8 * KEY_TILE),
        v128.store(get(at), shuffle32(get(hi), get(hi2), [2, 3, 6, 7]), 12 * KEY_TILE),
      ),
    ),
  );
  return f;
}

/**
 * `finishRows(acc, accStride, l, lStride, out, outStride, rows, bytes)`: out row = acc row / l,
 * zeros where l = 0 (no visible key); a NaN l gives a NaN row.
 */
export function buildFinishRows(): wasm.FunctionBuilder {
  const f = new FunctionBuilder('finishRows');
  const acc = f.param('i32');
  const accStride = f.param('i32');
  const l = f.param('i32');
  const lStride = f.param('i32');
  const out = f.param('i32');
  const outStride = f.param('i32');
  const rows = f.param('i32');
  const bytes = f.param('i32');
  const r = f.local('i32');
  const o = f.local('i32');
  const sum = f.local('f32');
  const d = f.local('v128');
  const zero = v128.const(new Array<number>(16).fill(0));
  f.body(
    wasm.forRange(
      r,
      i32.const(0),
      get(rows),
      1,
      set(sum, f32.load(get(l))),
      ifThen(
        f32.eq(get(sum), f32.const(0)),
        [wasm.forRange(o, i32.const(0), get(bytes), 16, v128.store(i32.add(get(out), get(o)), zero))],
        [set(d, f32x4.splat(get(sum))), wasm.forRange(o, i32.const(0), get(bytes), 16, v128.store(i32.add(get(out), get(o)), f32x4.div(v128.load(i32.add(get(acc), get(o))), get(d))))],
      ),
      set(acc, i32.add(get(acc), get(accStride))),
      set(l, i32.add(get(l), get(lStride))),
      set(out, i32.add(get(out), get(outStride))),
    ),
  );
  return f;
}

/**
 * `flashSpan` (q, R, D, k, kStride, v, vStride, Dv, from, to, meta, m, l, acc, s, flags): the
 * tiles of keys [from, to) in steps of TILE_KEYS (the tile module's), k and v the rows of key
 * `from`, every tile with the same flags: one call from JavaScript (and one entry in a worker's
 * call list) per row block and key span. With R = 0 it only reads the K and V rows [from, to) (a decode warm-up, below).
 */
export function buildFlashSpan(TILE_KEYS: number): wasm.FunctionBuilder {
  const f = new FunctionBuilder('flashSpan');
  // the tile's parameters, with (n, t0) replaced by (from, to)
  const q = f.param('i32');
  const R = f.param('i32');
  const D = f.param('i32');
  const k = f.param('i32');
  const kStride = f.param('i32');
  const v = f.param('i32');
  const vStride = f.param('i32');
  const Dv = f.param('i32');
  const from = f.param('i32');
  const to = f.param('i32');
  const meta = f.param('i32');
  const m = f.param('i32');
  const l = f.param('i32');
  const acc = f.param('i32');
  const s = f.param('i32');
  const flags = f.param('i32');
  const tail = [meta, m, l, acc, s, flags];
  const t = f.local('i32');
  const n = f.local('i32');
  const o = f.local('i32');
  const end = f.local('i32');
  const x = f.local('v128');
  const FLASH_TILE = 0; // the module's first function
  // R = 0 (a warm-up call): read the rows [from, to) of k and v (kStride / vStride bytes each,
  // contiguous) one load per 64-byte line, into nothing but the score scratch: a sequential
  // stream that brings a decode tile's token-major K/V rows (all heads) into L2 before the heads'
  // tiles read them Hkv·D·4 bytes apart, a stride no prefetcher follows across 4 KiB pages
  const touch = (base: wasm.Local, stride: wasm.Local): wasm.Expr =>
    wasm.seq(
      set(end, i32.add(get(base), i32.mul(i32.sub(get(to), get(from)), get(stride)))),
      forRange(o, get(base), get(end), 64, set(x, v128.or(get(x), v128.load(get(o))))),
    );
  f.body(
    ifThen(
      i32.eqz(get(R)),
      [touch(k, kStride), touch(v, vStride), v128.store(get(s), get(x))],
      [
        set(t, get(from)),
        block(
          wasm.loop(
            brIf(1, i32.ge_s(get(t), get(to))),
            set(n, i32.sub(get(to), get(t))),
            set(n, select(get(n), i32.const(TILE_KEYS), i32.lt_s(get(n), i32.const(TILE_KEYS)))),
            wasm.call(FLASH_TILE, ...[q, R, D, k, kStride, v, vStride, Dv].map(get), get(n), get(t), ...tail.map(get)),
            set(t, i32.add(get(t), i32.const(TILE_KEYS))),
            set(k, i32.add(get(k), i32.mul(get(kStride), i32.const(TILE_KEYS)))),
            set(v, i32.add(get(v), i32.mul(get(vStride), i32.const(TILE_KEYS)))),
            br(0),
          ),
        ),
      ],
    ),
  );
  return f;
}
