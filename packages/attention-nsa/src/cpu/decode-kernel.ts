// The WebAssembly SIMD kernel of NSA's CPU decode step (decode.ts): one key run of one kv head
// — a piece of the compressed blocks, a selected block or a piece of the window — against the
// group's query rows. Unlike the attention core's flash tile it keeps what it computed: the
// run's probabilities, relative to the run's own maximum, stay in a score block, because the
// compressed branch's probabilities are what block selection ranks (spec §4.3).
//
// `nsaRun(q, R, k, kStride, v, vStride, n, s, m, l, acc)`, for the R query rows at q (scaled,
// D floats each, R a multiple of 4) and the n ≤ RUN_KEYS keys whose rows start at k and v:
//   1. scores s[r][j] = q_r · k_j: 2 rows × 4 keys per step, eight accumulators over D
//      (4 key loads and 2 query loads per 8 multiply-adds), reduced 4 keys at a time;
//   2. per row: m = max_j s, s ← e^(s − m), l = Σ_j s (the run's partial softmax state);
//   3. acc[r] = Σ_j s[r][j] · v_j: 4 rows × 8 channels in eight registers per step over the keys
//      (the GEMM micro-kernel's shape: 2 value loads and 4 broadcasts per 8 multiply-adds).
// Rows of s are S_STRIDE bytes apart; lanes past n hold −∞ (probability 0).
// `nsaQueue(table, count, counter)` runs jobs of that table (NSA_RUN_ARGS i32 arguments each)
// until a shared counter passes `count`: every thread takes the next job, so a thread slowed by
// another process takes fewer.
//
// Axis letters: R query rows (the G heads of one kv head, padded to 4), D / Dv head dims.

import { wasm } from '@attnkit/tensor-core';

const { FunctionBuilder, block, br, brIf, call, f32, f32x4, forRange, get, i32, seq, set, v128 } = wasm;

/** The most keys of one run (a job): its score block is R × RUN_KEYS floats. */
export const RUN_KEYS = 256;
/** Bytes between rows of a score block. */
export const S_STRIDE = 4 * RUN_KEYS;
/** i32 arguments of one `nsaRun` call, as the queue's job table holds them. */
export const NSA_RUN_ARGS = 11;

export type NSARun = (q: number, R: number, k: number, kStride: number, v: number, vStride: number, n: number, s: number, m: number, l: number, acc: number) => void;
export type NSAQueue = (table: number, count: number, counter: number) => void;

export function nsaDecodeModule(heap: wasm.WasmHeap, D: number, Dv: number): Promise<wasm.WasmKernelModule> {
  const fma = heap.relaxedSimd;
  return heap.module(`attention-nsa/cpu-decode/${D}x${Dv}${fma ? '/fma' : ''}`, (memory) => wasm.assembleModule(memory, [buildRun(D, Dv, fma), buildQueue(0)]));
}

const NEG_INF = f32x4.splat(f32.const(-Infinity));
const ZERO = v128.const(new Array<number>(16).fill(0));

function buildRun(D: number, Dv: number, fma: boolean): wasm.FunctionBuilder {
  const f = new FunctionBuilder('nsaRun');
  const q = f.param('i32');
  const R = f.param('i32');
  const k = f.param('i32');
  const kStride = f.param('i32');
  const v = f.param('i32');
  const vStride = f.param('i32');
  const n = f.param('i32');
  const s = f.param('i32');
  const m = f.param('i32');
  const l = f.param('i32');
  const acc = f.param('i32');
  const r = f.local('i32');
  const j = f.local('i32');
  const kRows = [f.local('i32'), f.local('i32'), f.local('i32'), f.local('i32')];
  const qRow = f.local('i32');
  const sRow = f.local('i32');
  const vRow = f.local('i32');
  const nPad = f.local('i32');
  const regs = Array.from({ length: 8 }, () => f.local('v128'));
  const kv = [f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128')];
  const qa = f.local('v128');
  const qb = f.local('v128');
  const t1 = f.local('v128');
  const t2 = f.local('v128');
  const max = f.local('v128');
  const sum = f.local('v128');
  const tmp = f.local('v128');
  const exp = wasm.vectorExp(f, { fma });
  const reg = (i: number): wasm.Local => regs[i] as wasm.Local;
  const madd = (a: wasm.Local, x: wasm.Expr, y: wasm.Expr): wasm.Expr => set(a, fma ? f32x4.relaxed_madd(x, y, get(a)) : f32x4.add(get(a), f32x4.mul(x, y)));

  // 1. scores, 4 keys × 2 rows per step; the last group of 4 re-reads key n − 1 for the keys
  // past n, whose lanes are then overwritten with −∞
  const keyPointer = (i: number): wasm.Expr => {
    const at = i32.add(get(j), i32.const(i));
    const key = i === 0 ? get(j) : wasm.select(at, i32.sub(get(n), i32.const(1)), i32.lt_s(at, get(n)));
    return set(kRows[i] as wasm.Local, i32.add(get(k), i32.mul(key, get(kStride))));
  };
  const dotStep = (d: number): wasm.Expr =>
    seq(
      ...kv.map((x, i) => set(x, v128.load(get(kRows[i] as wasm.Local), 16 * d))),
      set(qa, v128.load(get(qRow), 16 * d)),
      set(qb, v128.load(get(qRow), 4 * D + 16 * d)),
      ...kv.flatMap((x, i) => [madd(reg(i), get(qa), get(x)), madd(reg(4 + i), get(qb), get(x))]),
    );
  const scores = forRange(
    j,
    i32.const(0),
    get(n),
    4,
    ...kRows.map((_, i) => keyPointer(i)),
    forRange(
      r,
      i32.const(0),
      get(R),
      2,
      set(qRow, i32.add(get(q), i32.mul(get(r), i32.const(4 * D)))),
      ...regs.map((x) => set(x, ZERO)),
      // each 16-byte step fenced off by a branch never taken (a key row's address is a multiple
      // of 4, the constant odd): in one basic block V8 would issue every load first and spill
      // (the attention core's tile measured the same: wasm-tile.ts)
      block(...Array.from({ length: D / 4 }, (_, d) => seq(dotStep(d), d + 1 < D / 4 ? brIf(0, i32.eq(get(kRows[0] as wasm.Local), i32.const(-1 - 16 * d))) : seq()))),
      set(sRow, i32.add(i32.add(get(s), i32.mul(get(r), i32.const(S_STRIDE))), i32.mul(get(j), i32.const(4)))),
      v128.store(get(sRow), wasm.reduce4(reg(0), reg(1), reg(2), reg(3), t1, t2)),
      v128.store(get(sRow), wasm.reduce4(reg(4), reg(5), reg(6), reg(7), t1, t2), S_STRIDE),
    ),
  );
  // lanes n .. nPad − 1 of every row: −∞
  const padLanes = seq(
    set(nPad, i32.and(i32.add(get(n), i32.const(3)), i32.const(-4))),
    forRange(r, i32.const(0), get(R), 1, forRange(j, get(n), get(nPad), 1, f32.store(i32.add(i32.add(get(s), i32.mul(get(r), i32.const(S_STRIDE))), i32.mul(get(j), i32.const(4))), f32.const(-Infinity)))),
  );

  // 2. per row: m, s ← e^(s − m), l
  const softmax = forRange(
    r,
    i32.const(0),
    get(R),
    1,
    set(sRow, i32.add(get(s), i32.mul(get(r), i32.const(S_STRIDE)))),
    set(max, NEG_INF),
    forRange(j, i32.const(0), get(nPad), 4, set(max, f32x4.max(get(max), v128.load(i32.add(get(sRow), i32.mul(get(j), i32.const(4))))))),
    set(max, f32x4.splat(wasm.horizontalMax(get(max), tmp))),
    set(sum, ZERO),
    forRange(
      j,
      i32.const(0),
      get(nPad),
      4,
      set(vRow, i32.add(get(sRow), i32.mul(get(j), i32.const(4)))),
      set(tmp, exp(f32x4.sub(v128.load(get(vRow)), get(max)))),
      v128.store(get(vRow), get(tmp)),
      set(sum, f32x4.add(get(sum), get(tmp))),
    ),
    f32.store(i32.add(get(m), i32.mul(get(r), i32.const(4))), f32x4.extract_lane(get(max), 0)),
    f32.store(i32.add(get(l), i32.mul(get(r), i32.const(4))), wasm.horizontalSum(get(sum), tmp)),
  );

  // 3. acc = P·V, 4 rows × (8 | 4) channels per register block
  const channelBlocks: { at: number; vectors: number }[] = [];
  for (let c = 0; c < Dv / 4; c += 2) channelBlocks.push({ at: 16 * c, vectors: Math.min(2, Dv / 4 - c) });
  const values = forRange(
    r,
    i32.const(0),
    get(R),
    4,
    set(sRow, i32.add(get(s), i32.mul(get(r), i32.const(S_STRIDE)))),
    ...channelBlocks.map(({ at, vectors }) => {
      const lanes = Array.from({ length: 4 * vectors }, (_, i) => i);
      const out = (row: number, h: number): wasm.Local => reg(2 * row + h);
      return seq(
        ...lanes.map((i) => set(out(i >> 1, i & 1), ZERO)),
        set(vRow, i32.add(get(v), i32.const(at))),
        set(qRow, get(sRow)), // the rows' probabilities of key j, walking with j
        forRange(
          j,
          i32.const(0),
          get(n),
          1,
          ...Array.from({ length: vectors }, (_, h) => set(kv[h] as wasm.Local, v128.load(get(vRow), 16 * h))),
          ...[0, 1, 2, 3].flatMap((row) => [
            set(qa, v128.load32_splat(get(qRow), row * S_STRIDE)),
            ...Array.from({ length: vectors }, (_, h) => madd(out(row, h), get(qa), get(kv[h] as wasm.Local))),
          ]),
          set(vRow, i32.add(get(vRow), get(vStride))),
          set(qRow, i32.add(get(qRow), i32.const(4))),
        ),
        ...[0, 1, 2, 3].flatMap((row) =>
          Array.from({ length: vectors }, (_, h) => v128.store(i32.add(get(acc), i32.mul(i32.add(get(r), i32.const(row)), i32.const(4 * Dv))), get(out(row, h)), at + 16 * h)),
        ),
      );
    }),
  );
  f.body(scores, padLanes, softmax, values);
  return f;
}

function buildQueue(runIndex: number): wasm.FunctionBuilder {
  const f = new FunctionBuilder('nsaQueue');
  const table = f.param('i32');
  const count = f.param('i32');
  const counter = f.param('i32');
  const job = f.local('i32');
  const at = f.local('i32');
  f.body(
    block(
      wasm.loop(
        set(job, i32.atomic_rmw_add(get(counter), i32.const(1))),
        brIf(1, i32.ge_s(get(job), get(count))),
        set(at, i32.add(get(table), i32.mul(get(job), i32.const(4 * NSA_RUN_ARGS)))),
        call(runIndex, ...Array.from({ length: NSA_RUN_ARGS }, (_, i) => i32.load(get(at), 4 * i))),
        br(0),
      ),
    ),
  );
  return f;
}
