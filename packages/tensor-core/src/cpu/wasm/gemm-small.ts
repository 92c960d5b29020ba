// f32 products with few rows of A — a decode step's Linear (one token: M = 1), attention scores
// of a handful of query heads against many keys — in WebAssembly SIMD, reading B where it lies.
//
// The BLIS-style kernel (gemm.ts) packs B into panels before it multiplies; packing touches all
// of B once per thread, which costs about as much as the multiply-adds when M is small (in
// session 5, packing in JavaScript, a 1 × 1792 × 1792 Linear took 12.8 ms; in SIMD on every
// thread it is ~2.3 ms, and 1.0 ms here). Here only A (M rows, small) is copied into the heap;
// B is read in place when it is a resident array (the CPU backend keeps tensors of ≥ 1 MiB in
// the shared heap) and copied in whole (one memcpy) otherwise.
//
// Kernels by layout of B:
//   Bᵀ (B stored [N, K]: Linear's weight, keys)  `dot2x4`: 2 rows of A against 4 rows of B, eight
//       f32x4 running dot products over k, summed across lanes at the end;
//   B  (stored [K, N]: values, a MatMul's right operand)
//       1–3 rows of A (or B narrower than 8): `axpy`, B's rows streamed in memory order, eight at
//       a time, into the rows of C (a GEMV: B is read once, whole rows, by both threads);
//       4–12 rows: gemm.ts's 4×8 micro-kernel with B's panels taken in place (a row stride per k
//       instead of a packed panel). Session 6 ran that kernel for one row too: three quarters of
//       its multiply-adds were on zero rows, and at N = 1792 its k blocks of 8 reloaded C every
//       8 steps (1 × 1792 × 1792: 3.6 GFLOP/s).

import { type Expr, FunctionBuilder, type Local, type MemoryImport, assembleModule, block, br, brIf, f32x4, forRange, get, i32, loop, set, v128 } from './emit.js';
import { type GemmOperands, buildGemmModule, roundUp, share } from './gemm.js';
import { type WasmHeap, type WasmRegion, exported } from './heap.js';
import { reduce4 } from './vector.js';
import type { WasmThreadPool } from './threads.js';

/**
 * The most rows of A for which reading B in place beats the packed GEMM (gemm.ts), on the 2-core
 * AVX2 machine of BENCHMARKS.md. Session 6 (packing in SIMD on every thread), time here ÷ time
 * packed at 1792², 1 and 2 threads, same process: Bᵀ 0.41–0.44 for 1 row, 0.71–0.76 for 16,
 * 0.78–0.92 for 32, 0.87–0.95 for 64, 0.94–1.02 for 128; B 0.54–0.60 for 1 row, 0.66–0.75 for
 * 8, 0.82 for 12, 1.11–1.15 for 16 (and 1.11 for NSA's 16 × 128 × 4095), 1.39–1.66 for 32.
 * (Against session 5's JavaScript packing B stayed here up to 32 rows.)
 */
export const SMALL_M_MAX = { transB: 128, plain: 12 } as const;
/** Below this many multiply-adds a product runs on the calling thread alone. */
const PARALLEL_MIN_MACS = 1 << 20;

/** Bytes of B one strided pass keeps in L1. */
const L1_BLOCK_BYTES = 16384;
const MB = 2;
const NB = 4;
/**
 * Rows of A for which B [K, N] is streamed row by row (`axpy`); from 4 rows the strided 4×8
 * micro-kernel is as fast or faster: it loads and stores C once per k block, where axpy does
 * per 8 rows of B for every row of A (BENCHMARKS.md, session 7: at 1792², time axpy ÷ strided
 * 0.37–0.49 for 1 row, 0.59–0.66 for 2, 0.78–0.85 for 3, 0.88–1.21 for 4, 0.91–1.55 for 8,
 * 0.80–1.88 for 12; 0.57–0.73 for 5, where the 4×8 tiles carry three zero rows).
 */
const AXPY_M_MAX = 3;
/**
 * Rows of B per sweep over C (one C vector loaded and stored per this many multiply-adds): 8
 * measured 0.69–0.90× the time of 4 at 1 × 1792 × 1792 and 2 × 1792 × 1792 (session 7).
 */
const AXPY_STEPS = 8;

/** (a, lda, b, ldb, c, ldc, mPairs, n0, n1, k): byte pointers and strides; rows n0..n1−1 of B in blocks of 4. */
type DotKernel = (...args: number[]) => void;

/**
 * c[m, n] = Σ_k a[m, k]·b[n, k] for 2-row pairs m of A and 4-row blocks n of B, k a multiple of 4.
 * Per k step: four loads of B, two of A, eight multiply-adds (14 of 16 SIMD registers).
 */
export function buildDotModule(memory: MemoryImport, fma: boolean): Uint8Array<ArrayBuffer> {
  const f = new FunctionBuilder('dot2x4');
  const a = f.param('i32');
  const lda = f.param('i32');
  const b = f.param('i32');
  const ldb = f.param('i32');
  const c = f.param('i32');
  const ldc = f.param('i32');
  const mPairs = f.param('i32');
  const n0 = f.param('i32');
  const n1 = f.param('i32');
  const kBytes = f.param('i32');
  const n = f.local('i32');
  const mp = f.local('i32');
  const k = f.local('i32');
  const ap = f.local('i32');
  const bp = f.local('i32');
  const cp = f.local('i32');
  const acc: Local[][] = Array.from({ length: MB }, () => Array.from({ length: NB }, () => f.local('v128')));
  const bv: Local[] = Array.from({ length: NB }, () => f.local('v128'));
  const av: Local[] = Array.from({ length: MB }, () => f.local('v128'));
  const t1 = f.local('v128');
  const t2 = f.local('v128');
  const madd = (s: Local, x: Expr, y: Expr): Expr => set(s, fma ? f32x4.relaxed_madd(x, y, get(s)) : f32x4.add(get(s), f32x4.mul(x, y)));
  const zero = v128.const(new Array<number>(16).fill(0));

  f.body(
    forRange(
      n,
      get(n0),
      get(n1),
      NB,
      forRange(
        mp,
        i32.const(0),
        get(mPairs),
        1,
        ...acc.flat().map((s) => set(s, zero)),
        set(ap, i32.add(get(a), i32.mul(get(mp), i32.mul(get(lda), i32.const(MB))))),
        set(bp, i32.add(get(b), i32.mul(get(n), get(ldb)))),
        set(k, get(kBytes)),
        loop(
          ...bv.map((x, j) => set(x, v128.load(i32.add(get(bp), i32.mul(get(ldb), i32.const(j)))))),
          ...av.map((x, i) => set(x, v128.load(i32.add(get(ap), i32.mul(get(lda), i32.const(i)))))),
          ...acc.flatMap((row, i) => row.map((s, j) => madd(s, get(av[i] as Local), get(bv[j] as Local)))),
          set(ap, i32.add(get(ap), i32.const(16))),
          set(bp, i32.add(get(bp), i32.const(16))),
          set(k, i32.sub(get(k), i32.const(16))),
          brIf(0, i32.gt_s(get(k), i32.const(0))),
        ),
        set(cp, i32.add(i32.add(get(c), i32.mul(get(n), i32.const(4))), i32.mul(get(mp), i32.mul(get(ldc), i32.const(MB))))),
        ...acc.map((row, i) => v128.store(i32.add(get(cp), i32.mul(get(ldc), i32.const(i))), reduce4(...(row as [Local, Local, Local, Local]), t1, t2))),
      ),
    ),
  );
  return assembleModule(memory, [f]);
}

/** Why the small-M path does not take a product (null when it does). */
export function smallGemmDeclines(p: GemmOperands): string | null {
  const most = p.transB ? SMALL_M_MAX.transB : SMALL_M_MAX.plain;
  if (p.M > most) return `${p.M} rows of A (reads B${p.transB ? 'ᵀ' : ''} in place up to ${most})`;
  if (p.transB && (p.N < NB || p.K % 4 !== 0)) return `Bᵀ of ${p.N} × ${p.K} (needs K % 4 = 0 and N ≥ ${NB})`;
  return null;
}

/**
 * out[outOffset + m·N + n] = Σ_k A[m, k]·B[k, n] for few rows of A (check `smallGemmDeclines`
 * first). Every heap region it takes is released on return.
 */
export async function wasmSmallGemm(heap: WasmHeap, pool: WasmThreadPool | null, p: GemmOperands, out: Float32Array, outOffset: number): Promise<void> {
  const { M, N, K } = p;
  using scope = heap.scope('matmul');
  const threads = pool && M * N * K >= PARALLEL_MIN_MACS ? pool.size : 1;
  if (p.transB) await dotProduct(heap, pool, threads, p, scope.take, out, outOffset);
  else if (M <= AXPY_M_MAX || N < 8) await axpyProduct(heap, pool, threads, p, scope.take, out, outOffset);
  else await panelProduct(heap, pool, threads, p, scope.take, out, outOffset);
  if (K === 0) out.fill(0, outOffset, outOffset + M * N);
}

/** A's rows [M padded to `rows`, K] row-major in the heap, zero rows past M. */
function aRows(heap: WasmHeap, p: GemmOperands, take: (bytes: number) => WasmRegion, rows: number, kPad: number): number {
  const { a, aOffset, M, K, transA } = p;
  const region = take(4 * rows * kPad);
  const dst = heap.f32;
  dst.fill(0, region.index, region.index + rows * kPad);
  for (let m = 0; m < M; m++) {
    const o = region.index + m * kPad;
    if (transA) for (let k = 0; k < K; k++) dst[o + k] = a[aOffset + k * M + m] as number;
    else dst.set(a.subarray(aOffset + m * K, aOffset + (m + 1) * K), o);
  }
  return region.byteOffset;
}

async function dotProduct(heap: WasmHeap, pool: WasmThreadPool | null, threads: number, p: GemmOperands, take: (bytes: number) => WasmRegion, out: Float32Array, outOffset: number): Promise<void> {
  const { M, N, K } = p;
  const fma = heap.relaxedSimd;
  const kernel = await heap.module(`tensor-core/dot2x4${fma ? '/fma' : ''}`, (memory) => buildDotModule(memory, fma));
  const rows = roundUp(M, MB);
  const a = aRows(heap, p, take, rows, K);
  const b = heap.operandAt(p.b, p.bOffset, K * N, take);
  const c = take(4 * rows * N);
  // blocks of 4 rows of B; the last block ends at N (it may redo outputs: C is written, not summed)
  const call = ([n0, n1]: [number, number]): number[] => [a, 4 * K, b, 4 * K, c.byteOffset, 4 * N, rows / MB, n0, n1, 4 * K];
  const lists = share(N, threads, NB)
    .filter(([n0, n1]) => n1 > n0)
    .map(([n0, n1]) => {
      const tail = n1 === N && N % NB !== 0;
      const full = tail ? n1 - (N % NB) : n1;
      const calls = full > n0 ? [call([n0, full])] : [];
      if (tail) calls.push(call([N - NB, N - NB + 1]));
      return calls;
    });
  if (K > 0) {
    if (pool && lists.length > 1) await pool.run(kernel, 'dot2x4', lists);
    else {
      const dot = exported<DotKernel>(kernel.instance, 'dot2x4');
      for (const args of lists.flat()) dot(...args);
    }
  }
  out.set(heap.f32.subarray(c.index, c.index + M * N), outOffset);
}

/** (a, b, c, ldc, mPanels, nPanels, kc, accumulate, aRowBytes, bStepBytes, bPanelBytes). */
type StridedMacro = (...args: number[]) => void;

async function panelProduct(heap: WasmHeap, pool: WasmThreadPool | null, threads: number, p: GemmOperands, take: (bytes: number) => WasmRegion, out: Float32Array, outOffset: number): Promise<void> {
  const { M, N, K } = p;
  const fma = heap.relaxedSimd;
  const kernel = await heap.module(`tensor-core/gemm4x8-strided${fma ? '/fma' : ''}`, (memory) => buildGemmModule(memory, fma, 'strided'));
  const MR = 4;
  const NR = 8;
  const mPanels = Math.ceil(M / MR);
  const nPanels = Math.ceil(N / NR);
  const ldc = nPanels * NR;
  const a = aRows(heap, p, take, mPanels * MR, K);
  const b = heap.operandAt(p.b, p.bOffset, K * N, take, 4 * (ldc - N)); // a partial last panel reads past row K − 1's end
  const c = take(4 * mPanels * MR * ldc);
  // B in blocks of kc rows, so the rows every panel of A passes over stay in L1 (each panel reads
  // 32 bytes of a row at a large stride); one block per call, C carried over (`accumulate`)
  const kc = Math.max(8, Math.min(256, Math.floor(L1_BLOCK_BYTES / (4 * N))));
  const call = ([j0, j1]: [number, number], k0: number): number[] => [
    a + 4 * k0,
    b + 4 * (NR * j0 + N * k0),
    c.byteOffset + 4 * NR * j0,
    4 * ldc,
    mPanels,
    j1 - j0,
    Math.min(kc, K - k0),
    k0 > 0 ? 1 : 0,
    4 * K,
    4 * N,
    4 * NR,
  ];
  const lists = share(nPanels, threads, 1)
    .filter(([j0, j1]) => j1 > j0)
    .map((range) => Array.from({ length: Math.ceil(K / kc) }, (_, i) => call(range, i * kc)));
  if (K > 0) {
    if (pool && lists.length > 1) await pool.run(kernel, 'gemm4x8', lists);
    else {
      const macro = exported<StridedMacro>(kernel.instance, 'gemm4x8');
      for (const args of lists.flat()) macro(...args);
    }
  }
  const heapF32 = heap.f32;
  for (let m = 0; m < M; m++) out.set(heapF32.subarray(c.index + m * ldc, c.index + m * ldc + N), outOffset + m * N);
}

/** (a, lda, M, b, ldb, c, ldc, vectors, K): byte pointers and strides; see axpyFunction. */
type AxpyKernel = (...args: number[]) => void;

/**
 * axpy(a, lda, M, b, ldb, c, ldc, vectors, K): C[m, 0..4·vectors) += Σ_k A[m, k]·B[k, ·] for
 * the M rows of A, B's rows streamed in order `steps` at a time (rows k..k+steps−1 against as
 * many splatted A values, one C vector loaded and stored per `steps` multiply-adds), then one at
 * a time for K's remainder. B is read as whole rows in memory order (the hardware prefetchers'
 * best case) and the slice of C a thread owns stays in L1/L2 (MLAS's GEMV does the same for one
 * row).
 */
function axpyFunction(fma: boolean, steps: 4 | 8 = AXPY_STEPS): FunctionBuilder {
  const f = new FunctionBuilder('axpy');
  const a = f.param('i32');
  const lda = f.param('i32');
  const M = f.param('i32');
  const b = f.param('i32');
  const ldb = f.param('i32');
  const c = f.param('i32');
  const ldc = f.param('i32');
  const vectors = f.param('i32');
  const K = f.param('i32');
  const k = f.local('i32');
  const r = f.local('i32');
  const j = f.local('i32');
  const ap = f.local('i32');
  const bp = f.local('i32');
  const cp = f.local('i32');
  const rowOffsets: Local[] = Array.from({ length: steps - 1 }, () => f.local('i32'));
  const s: Local[] = Array.from({ length: steps }, () => f.local('v128'));
  const acc = f.local('v128');
  const madd = (x: Expr, y: Expr): Expr => set(acc, fma ? f32x4.relaxed_madd(x, y, get(acc)) : f32x4.add(get(acc), f32x4.mul(x, y)));
  const bRow = (i: number): Expr => (i === 0 ? get(bp) : i32.add(get(bp), get(rowOffsets[i - 1] as Local)));
  // every row of A against B's rows k..k+rows−1
  const sweep = (rows: number): Expr =>
    forRange(
      r,
      i32.const(0),
      get(M),
      1,
      set(ap, i32.add(i32.add(get(a), i32.mul(get(r), get(lda))), i32.mul(get(k), i32.const(4)))),
      ...s.slice(0, rows).map((x, i) => set(x, v128.load32_splat(get(ap), 4 * i))),
      set(cp, i32.add(get(c), i32.mul(get(r), get(ldc)))),
      set(bp, i32.add(get(b), i32.mul(get(k), get(ldb)))),
      set(j, get(vectors)),
      loop(
        set(acc, v128.load(get(cp))),
        ...s.slice(0, rows).map((x, i) => madd(get(x), v128.load(bRow(i)))),
        v128.store(get(cp), get(acc)),
        set(cp, i32.add(get(cp), i32.const(16))),
        set(bp, i32.add(get(bp), i32.const(16))),
        set(j, i32.sub(get(j), i32.const(1))),
        brIf(0, i32.gt_s(get(j), i32.const(0))),
      ),
    );
  f.body(
    ...rowOffsets.map((o, i) => set(o, i32.mul(get(ldb), i32.const(i + 1)))),
    set(k, i32.const(0)),
    block(loop(brIf(1, i32.gt_s(i32.add(get(k), i32.const(steps)), get(K))), sweep(steps), set(k, i32.add(get(k), i32.const(steps))), br(0))),
    block(loop(brIf(1, i32.ge_s(get(k), get(K))), sweep(1), set(k, i32.add(get(k), i32.const(1))), br(0))),
  );
  return f;
}

/** Columns a thread's share of C starts at a multiple of: whole 64-byte lines, never shared. */
const AXPY_COLUMN_UNIT = 16;

async function axpyProduct(heap: WasmHeap, pool: WasmThreadPool | null, threads: number, p: GemmOperands, take: (bytes: number) => WasmRegion, out: Float32Array, outOffset: number): Promise<void> {
  const { M, N, K } = p;
  const fma = heap.relaxedSimd;
  const kernel = await heap.module(`tensor-core/axpy${AXPY_STEPS}${fma ? '/fma' : ''}`, (memory) => assembleModule(memory, [axpyFunction(fma)]));
  // C's rows start on 64-byte lines, so the threads' column ranges never share one
  const ldc = roundUp(N, AXPY_COLUMN_UNIT);
  const a = aRows(heap, p, take, M, K);
  const b = heap.operandAt(p.b, p.bOffset, K * N, take, 4 * (roundUp(N, 4) - N)); // the last vector of a row reads past its end
  const c = take(4 * M * ldc);
  heap.f32.fill(0, c.index, c.index + M * ldc);
  const lists = share(N, threads, AXPY_COLUMN_UNIT)
    .filter(([n0, n1]) => n1 > n0)
    .map(([n0, n1]) => [[a, 4 * K, M, b + 4 * n0, 4 * N, c.byteOffset + 4 * n0, 4 * ldc, Math.ceil((n1 - n0) / 4), K]]);
  if (K > 0) {
    if (pool && lists.length > 1) await pool.run(kernel, 'axpy', lists);
    else {
      const axpy = exported<AxpyKernel>(kernel.instance, 'axpy');
      for (const args of lists.flat()) axpy(...args);
    }
  }
  const heapF32 = heap.f32;
  for (let m = 0; m < M; m++) out.set(heapF32.subarray(c.index + m * ldc, c.index + m * ldc + N), outOffset + m * N);
}
