// The CPU indexer's scores in WebAssembly SIMD: I[t] = Σ_j w_j · ReLU(q_j · k_t) for a run of
// consecutive f32 key rows, 4 keys × 2 heads per block (eight f32x4 running dot products over
// D_I, reduced by shuffles), then ReLU and the head weights on 4 keys at once. The TypeScript
// `scoreTile` (f64, cpu.ts) stays the path for keys stored in other dtypes, for runs shorter
// than one block, and for backends without SIMD.
//
// ReLU is `pmax(0, s)`: as the TypeScript kernel's `s > 0 ? s : 0`, it maps NaN to 0.
//
// Axis letters: H_I heads, D_I head dim, T keys.

import { type CpuBackend, wasm } from '@attnkit/tensor-core';

const { FunctionBuilder, assembleModule, f32, f32x4, forRange, get, i32, set, v128, reduce4 } = wasm;

/** Keys per block (a run shorter than this stays in TypeScript). */
export const SCORE_BLOCK_KEYS = 4;
/**
 * Head dims up to this are unrolled into the module (one module per D_I): 1.5–1.6× the loop at
 * D_I = 32 and 128 (session 7, same process alternating, CPU time).
 */
const UNROLL_MAX_DIM = 256;
/** Scores from which a query's keys are split over the backend's threads. */
const PARALLEL_MIN_MACS = 1 << 20;

/** (q, w, heads, dimBytes, keys, t0, t1, out): byte pointers; keys [T, D_I] rows t0..t1−1 (t1 − t0 ≥ 4). */
type ScoreKernel = (...args: number[]) => void;

/**
 * `scores(q, w, heads, dimBytes, keys, t0, t1, out)`: out[t] for t in [t0, t1), blocks of 4 keys
 * (the last block ends at t1 and may redo up to 3 keys: out is written, not summed). q is
 * [heads, D_I] (heads even: the caller pads a zero head, whose weight is 0), w [heads].
 */
function buildScoreModule(memory: wasm.MemoryImport, fma: boolean, dim: number | null = null): Uint8Array<ArrayBuffer> {
  const f = new FunctionBuilder('scores');
  const q = f.param('i32');
  const w = f.param('i32');
  const heads = f.param('i32');
  const dimBytes = f.param('i32');
  const keys = f.param('i32');
  const t0 = f.param('i32');
  const t1 = f.param('i32');
  const out = f.param('i32');
  const t = f.local('i32');
  const h = f.local('i32');
  const d = f.local('i32');
  const kp = f.local('i32');
  const qp = f.local('i32');
  const acc = Array.from({ length: 2 }, () => Array.from({ length: 4 }, () => f.local('v128')));
  const kv = Array.from({ length: 4 }, () => f.local('v128'));
  const qa = f.local('v128');
  const qb = f.local('v128');
  const score = f.local('v128');
  const dots = f.local('v128');
  const tmp1 = f.local('v128');
  const tmp2 = f.local('v128');
  const zero = v128.const(new Array<number>(16).fill(0));
  const madd = (s: wasm.Local, x: wasm.Expr, y: wasm.Expr): wasm.Expr => set(s, fma ? f32x4.relaxed_madd(x, y, get(s)) : f32x4.add(get(s), f32x4.mul(x, y)));
  const row = (j: number): wasm.Expr => i32.add(get(kp), i32.mul(get(dimBytes), i32.const(j)));
  // D_I known when the module is built: every load at a constant offset from its row pointer,
  // each 16-byte step fenced off by a branch never taken (the key row's address is a multiple of
  // 4, the constant odd), so V8 neither hoists the loads of later steps nor spills them
  const unrolled = (dimFloats: number): wasm.Expr =>
    wasm.block(
      ...Array.from({ length: dimFloats / 4 }, (_, u) => [
        ...kv.map((k, j) => set(k, v128.load(get(kp), 4 * dimFloats * j + 16 * u))),
        set(qa, v128.load(get(qp), 16 * u)),
        set(qb, v128.load(get(qp), 4 * dimFloats + 16 * u)),
        ...kv.flatMap((k, j) => [madd(acc[0]?.[j] as wasm.Local, get(qa), get(k)), madd(acc[1]?.[j] as wasm.Local, get(qb), get(k))]),
        ...(u + 1 < dimFloats / 4 ? [wasm.brIf(0, i32.eq(get(kp), i32.const(-1 - 16 * u)))] : []),
      ]).flat(),
    );
  // block of keys t..t+3: the score vector of the 4 keys
  const block = [
    set(score, zero),
    set(kp, i32.add(get(keys), i32.mul(get(t), get(dimBytes)))),
    forRange(
      h,
      i32.const(0),
      get(heads),
      2,
      ...acc.flat().map((a) => set(a, zero)),
      set(qp, i32.add(get(q), i32.mul(get(h), get(dimBytes)))),
      dim === null
        ? forRange(
            d,
            i32.const(0),
            get(dimBytes),
            16,
            ...kv.map((k, j) => set(k, v128.load(i32.add(row(j), get(d))))),
            set(qa, v128.load(i32.add(get(qp), get(d)))),
            set(qb, v128.load(i32.add(i32.add(get(qp), get(dimBytes)), get(d)))),
            ...kv.flatMap((k, j) => [madd(acc[0]?.[j] as wasm.Local, get(qa), get(k)), madd(acc[1]?.[j] as wasm.Local, get(qb), get(k))]),
          )
        : unrolled(dim),
      // [q_h·k_t … k_t+3], ReLU, times w_h; the same for head h + 1
      ...[0, 1].flatMap((i) => {
        const [a, b, c, e] = acc[i] as [wasm.Local, wasm.Local, wasm.Local, wasm.Local];
        const weight = f32x4.splat(f32.load(i32.add(get(w), i32.mul(i32.add(get(h), i32.const(i)), i32.const(4)))));
        return [set(dots, reduce4(a, b, c, e, tmp1, tmp2)), set(score, f32x4.add(get(score), f32x4.mul(weight, f32x4.pmax(zero, get(dots)))))];
      }),
    ),
    v128.store(i32.add(get(out), i32.mul(get(t), i32.const(4))), get(score)),
  ];
  f.body(
    forRange(t, get(t0), i32.sub(get(t1), i32.const(3)), 4, ...block),
    // the last block, ending at t1 (when t1 − t0 is not a multiple of 4)
    set(t, i32.sub(get(t1), i32.const(4))),
    ...block,
  );
  return assembleModule(memory, [f]);
}

/** The scores of one query over keys 0..visible−1, computed in the heap; see `scoreRun`. */
export interface HeapScores {
  /** The scores [visible] (a view of the heap: read it before the next heap growth). */
  readonly row: Float32Array;
  release(): void;
}

/**
 * Scores of one query (q [H_I, D_I], w [H_I]) over key rows keyRow0 … keyRow0 + visible − 1 of
 * `keys` (f32 [rows, D_I], read in place when resident). Null when the SIMD path does not apply
 * (no SIMD heap, fewer than 4 keys, D_I not a multiple of 4): the caller scores in TypeScript.
 */
export async function scoreRun(backend: CpuBackend, q: Float32Array, qAt: number, w: Float32Array, wAt: number, heads: number, dim: number, keys: Float32Array, keyRow0: number, visible: number): Promise<HeapScores | null> {
  const heap = backend.wasm;
  if (!heap || visible < SCORE_BLOCK_KEYS || dim % 4 !== 0) return null;
  const fma = heap.relaxedSimd;
  const unrolled = dim <= UNROLL_MAX_DIM ? dim : null;
  const kernel = await heap.module(`indexer-dsa/scores/${unrolled ?? 'loop'}${fma ? '/fma' : ''}`, (memory) => buildScoreModule(memory, fma, unrolled));
  const paddedHeads = heads + (heads % 2);
  using scope = heap.scope('indexer');
  const qr = scope.take(4 * paddedHeads * dim);
  const wr = scope.take(4 * paddedHeads);
  const f32v = heap.f32;
  f32v.fill(0, qr.index, qr.index + paddedHeads * dim);
  f32v.set(q.subarray(qAt, qAt + heads * dim), qr.index);
  f32v.fill(0, wr.index, wr.index + paddedHeads);
  f32v.set(w.subarray(wAt, wAt + heads), wr.index);
  let keysAt = heap.byteOffsetOf(keys);
  if (keysAt === null) {
    const kr = scope.take(4 * visible * dim);
    heap.f32.set(keys.subarray(keyRow0 * dim, (keyRow0 + visible) * dim), kr.index);
    keysAt = kr.byteOffset;
  } else keysAt += 4 * keyRow0 * dim;
  // the scores outlive the call's scratch: the caller releases them
  const out = heap.alloc(4 * visible, 'indexer');
  try {
    const call = (from: number, to: number): number[] => [qr.byteOffset, wr.byteOffset, paddedHeads, 4 * dim, keysAt, from, to, out.byteOffset];
    const pool = backend.wasmThreads;
    const threads = pool && visible * heads * dim >= PARALLEL_MIN_MACS ? pool.size : 1;
    if (pool && threads > 1) {
      // ranges of whole blocks, each ≥ 4 keys
      const blocks = Math.floor(visible / SCORE_BLOCK_KEYS);
      const bounds = Array.from({ length: threads + 1 }, (_, i) => (i === threads ? visible : SCORE_BLOCK_KEYS * Math.floor((blocks * i) / threads)));
      await pool.run(
        kernel,
        'scores',
        bounds.slice(0, -1).map((from, i) => (from < (bounds[i + 1] as number) ? [call(from, bounds[i + 1] as number)] : [])),
      );
    } else wasm.exported<ScoreKernel>(kernel.instance, 'scores')(...call(0, visible));
    return {
      row: heap.f32.subarray(out.index, out.index + visible),
      release: () => out.release(),
    };
  } catch (error) {
    out.release();
    throw error;
  }
}
