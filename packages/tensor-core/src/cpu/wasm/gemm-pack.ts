// Packing for the GEMM (gemm.ts), in WebAssembly SIMD so that every thread packs the panels it
// multiplies. A panel is W lanes (A: W = 4 rows, B: W = 8 columns) interleaved per k, [k][W];
// lanes past the operand's edge are zeros. Session 5 packed in JavaScript on the calling thread
// while the worker waited: 1024³ spent ~25% of its time there (BENCHMARKS.md, session 6).
//
// The source is addressed by two byte strides, so one function reads all four transpose layouts:
// lane j, step k at src + j·laneStride + k·kStride.
//   k contiguous (kStride = 4: A as [M, K], Bᵀ as [N, K]): 4 steps of 4 lanes are loaded as four
//       vectors and transposed by 8 shuffles (a 4×4 block per group of 4 lanes);
//   lanes contiguous (laneStride = 4: B as [K, N], Aᵀ as [K, M]): one vector copy per 4 lanes
//       per k;
//   anything else, a last partial panel, and the k steps left over by the 4-step blocks: a scalar
//       loop (a few percent of the elements at most for the shapes that are large enough to
//       matter).

import { type Expr, FunctionBuilder, type Local, block, br, brIf, f32, forRange, get, i32, ifThen, loop, seq, set, shuffle32, v128 } from './emit.js';

/**
 * pack{W}(src, laneStride, kStride, dst, count, kc): `count` lanes from src (byte strides) into
 * ⌈count / W⌉ panels of kc steps at dst, panel p at dst + p·kc·W·4.
 */
export function packFunction(W: 4 | 8): FunctionBuilder {
  const f = new FunctionBuilder(`pack${W}`);
  const src = f.param('i32');
  const laneStride = f.param('i32');
  const kStride = f.param('i32');
  const dst = f.param('i32');
  const count = f.param('i32');
  const kc = f.param('i32');
  const pos = f.local('i32'); // first lane of the panel
  const s = f.local('i32'); // the panel's lane 0, step k
  const d = f.local('i32'); // the panel's step k in dst
  const k = f.local('i32');
  const j = f.local('i32');
  const lanes = f.local('i32');
  // byte offsets of lanes 1..W−1 from lane 0, so the loops add instead of multiply
  const laneOffsets: Local[] = Array.from({ length: W - 1 }, () => f.local('i32'));
  const [r0, r1, r2, r3] = [f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128')];
  const [t0, t1, t2, t3] = [f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128')];
  const laneAddr = (lane: number): Expr => {
    const offset = laneOffsets[lane - 1];
    return offset ? i32.add(get(s), get(offset)) : get(s);
  };

  // steps k..k+3 of lanes 4g..4g+3 → dst steps k..k+3, lanes 4g..4g+3 (a 4×4 transpose)
  const transposeGroup = (g: number): Expr =>
    seq(
      ...[r0, r1, r2, r3].map((r, i) => set(r, v128.load(laneAddr(4 * g + i)))),
      set(t0, shuffle32(get(r0), get(r1), [0, 4, 1, 5])),
      set(t1, shuffle32(get(r0), get(r1), [2, 6, 3, 7])),
      set(t2, shuffle32(get(r2), get(r3), [0, 4, 1, 5])),
      set(t3, shuffle32(get(r2), get(r3), [2, 6, 3, 7])),
      v128.store(get(d), shuffle32(get(t0), get(t2), [0, 1, 4, 5]), 16 * g),
      v128.store(get(d), shuffle32(get(t0), get(t2), [2, 3, 6, 7]), 16 * g + 4 * W),
      v128.store(get(d), shuffle32(get(t1), get(t3), [0, 1, 4, 5]), 16 * g + 8 * W),
      v128.store(get(d), shuffle32(get(t1), get(t3), [2, 3, 6, 7]), 16 * g + 12 * W),
    );
  const groups = Array.from({ length: W / 4 }, (_, g) => g);
  const full = i32.ge_s(get(lanes), i32.const(W));

  f.body(
    ...laneOffsets.map((o, i) => set(o, i32.mul(get(laneStride), i32.const(i + 1)))),
    forRange(
      pos,
      i32.const(0),
      get(count),
      W,
      set(s, i32.add(get(src), i32.mul(get(pos), get(laneStride)))),
      set(d, i32.add(get(dst), i32.mul(i32.mul(get(pos), get(kc)), i32.const(4)))),
      set(lanes, i32.sub(get(count), get(pos))),
      set(k, i32.const(0)),
      ifThen(i32.and(full, i32.eq(get(kStride), i32.const(4))), [
        block(
          loop(
            brIf(1, i32.gt_s(i32.add(get(k), i32.const(4)), get(kc))),
            ...groups.map(transposeGroup),
            set(s, i32.add(get(s), i32.const(16))),
            set(d, i32.add(get(d), i32.const(16 * W))),
            set(k, i32.add(get(k), i32.const(4))),
            br(0),
          ),
        ),
      ]),
      ifThen(i32.and(full, i32.and(i32.eq(get(laneStride), i32.const(4)), i32.ne(get(kStride), i32.const(4)))), [
        block(
          loop(
            brIf(1, i32.ge_s(get(k), get(kc))),
            ...groups.map((g) => v128.store(get(d), v128.load(get(s), 16 * g), 16 * g)),
            set(s, i32.add(get(s), get(kStride))),
            set(d, i32.add(get(d), i32.const(4 * W))),
            set(k, i32.add(get(k), i32.const(1))),
            br(0),
          ),
        ),
      ]),
      // the rest, one element at a time; lanes past `count` are zeros
      block(
        loop(
          brIf(1, i32.ge_s(get(k), get(kc))),
          forRange(
            j,
            i32.const(0),
            i32.const(W),
            1,
            f32.store(
              i32.add(get(d), i32.mul(get(j), i32.const(4))),
              ifF32(i32.lt_s(get(j), get(lanes)), f32.load(i32.add(get(s), i32.mul(get(j), get(laneStride)))), f32.const(0)),
            ),
          ),
          set(s, i32.add(get(s), get(kStride))),
          set(d, i32.add(get(d), i32.const(4 * W))),
          set(k, i32.add(get(k), i32.const(1))),
          br(0),
        ),
      ),
    ),
  );
  return f;
}

/** `cond ? a : b` as an if with an f32 result, so `a` (a load) runs only when cond holds. */
const ifF32 = (cond: Expr, a: Expr, b: Expr): Expr => [...cond, 0x04, 0x7d, ...a, 0x05, ...b, 0x0b];
