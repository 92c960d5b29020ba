// f32 GEMM in WebAssembly SIMD, BLIS-style: operands are packed into panels (A: 4 rows
// interleaved per k, B: 8 columns per k), and a 4×8 micro-kernel keeps the 4×8 block of C in
// eight f32x4 registers while it streams one A panel and one B panel: per k, two B vectors,
// four broadcast A values, eight multiply-adds (14 of the 16 SIMD registers of x86-64).
// Blocking: kc = 256 values of k per pass (a B panel, 8 KiB, stays in L1; each call's A block
// of MC rows, 128 KiB, in L2), NC = 1024 columns per packed B block, MROWS rows per chunk.
// Packing reads any of the four transpose layouts, so MatMul and Linear share one kernel; edge
// panels are zero-padded and C is computed into a padded buffer, copied out row by row.
//
// Where the engine validates relaxed SIMD (Node 22+, browsers; Node 20 behind
// --experimental-wasm-relaxed-simd) each multiply-add is one `f32x4.relaxed_madd` (an FMA on
// x86 with FMA3); elsewhere mul + add. The module is built once per heap for one of the two.

import { type Expr, FunctionBuilder, type Local, type MemoryImport, assembleModule, brIf, f32x4, forRange, get, i32, ifThen, loop, seq, set, v128 } from './emit.js';
import { type WasmHeap, exported } from './heap.js';
import type { WasmThreadPool } from './threads.js';

const MR = 4;
const NR = 8;
const KC = 256;
const MC = 128;
const NC = 1024;
const MROWS = 4096;

/** (aPack, bPack, c, ldcBytes, mPanels, nPanels, kc, accumulate): pointers in bytes. */
type GemmMacro = (...args: number[]) => void;

/**
 * The macro-kernel: every (B panel, A panel) pair of one packed block, C += or = A·B. The
 * `strided` layout (gemm-small.ts) reads both operands where they lie: A as rows (`aRow` bytes
 * apart), B's row k at `bStep`·k and its panels `bPanel` bytes apart.
 */
export function buildGemmModule(memory: MemoryImport, fma: boolean, layout: 'packed' | 'strided' = 'packed'): Uint8Array<ArrayBuffer> {
  const f = new FunctionBuilder('gemm4x8');
  const aPack = f.param('i32');
  const bPack = f.param('i32');
  const c = f.param('i32');
  const ldc = f.param('i32');
  const mPanels = f.param('i32');
  const nPanels = f.param('i32');
  const kc = f.param('i32');
  const accumulate = f.param('i32');
  const strided = layout === 'strided' ? { aRow: f.param('i32'), bStep: f.param('i32'), bPanel: f.param('i32') } : null;
  const aRowOffsets = strided ? [f.local('i32'), f.local('i32'), f.local('i32')] : [];
  const jp = f.local('i32');
  const ip = f.local('i32');
  const k = f.local('i32');
  const ap = f.local('i32');
  const bp = f.local('i32');
  const cp = f.local('i32');
  const ROWS = Array.from({ length: MR }, (_, r) => r);
  const acc: Local[][] = ROWS.map(() => [f.local('v128'), f.local('v128')]);
  const b0 = f.local('v128');
  const b1 = f.local('v128');
  const a = f.local('v128');

  const madd = (acc: Local, x: Expr, y: Expr): Expr => set(acc, fma ? f32x4.relaxed_madd(x, y, get(acc)) : f32x4.add(get(acc), f32x4.mul(x, y)));
  const row = (r: number): Expr => i32.add(get(cp), i32.mul(get(ldc), i32.const(r)));
  const accAt = (r: number, h: number): Local => (acc[r] as Local[])[h] as Local;
  const loadC = ROWS.flatMap((r) => [set(accAt(r, 0), v128.load(row(r))), set(accAt(r, 1), v128.load(row(r), 16))]);
  const zeroC = ROWS.flatMap((r) => [set(accAt(r, 0), v128.const(new Array<number>(16).fill(0))), set(accAt(r, 1), get(accAt(r, 0)))]);
  const storeC = ROWS.flatMap((r) => [v128.store(row(r), get(accAt(r, 0))), v128.store(row(r), get(accAt(r, 1)), 16)]);
  // one k step at byte offsets (aOff, bOff) from the panel cursors
  const step = (aOff: number, bOff: number): Expr =>
    seq(
      set(b0, v128.load(get(bp), bOff)),
      set(b1, v128.load(get(bp), bOff + 16)),
      ...ROWS.flatMap((r) => [
        set(a, strided ? v128.load32_splat(r === 0 ? get(ap) : i32.add(get(ap), get(aRowOffsets[r - 1] as Local)), aOff) : v128.load32_splat(get(ap), aOff + 4 * r)),
        madd(accAt(r, 0), get(a), get(b0)),
        madd(accAt(r, 1), get(a), get(b1)),
      ]),
    );

  f.body(
    ...aRowOffsets.map((o, r) => set(o, i32.mul(get((strided as { aRow: Local }).aRow), i32.const(r + 1)))),
    forRange(
      jp,
      i32.const(0),
      get(nPanels),
      1,
      forRange(
        ip,
        i32.const(0),
        get(mPanels),
        1,
        set(ap, i32.add(get(aPack), i32.mul(get(ip), strided ? i32.mul(get(strided.aRow), i32.const(MR)) : i32.mul(get(kc), i32.const(MR * 4))))),
        set(bp, i32.add(get(bPack), i32.mul(get(jp), strided ? get(strided.bPanel) : i32.mul(get(kc), i32.const(NR * 4))))),
        set(cp, i32.add(i32.add(get(c), i32.mul(get(jp), i32.const(NR * 4))), i32.mul(get(ip), i32.mul(get(ldc), i32.const(MR))))),
        ifThen(get(accumulate), loadC, zeroC),
        // one k step per iteration: with two, V8 hoists the second step's six loads above the
        // first step's arithmetic and spills accumulators to the stack (seen in --print-wasm-code)
        set(k, get(kc)),
        loop(
          step(0, 0),
          set(ap, i32.add(get(ap), i32.const(strided ? 4 : MR * 4))),
          set(bp, i32.add(get(bp), strided ? get(strided.bStep) : i32.const(NR * 4))),
          set(k, i32.sub(get(k), i32.const(1))),
          brIf(0, i32.gt_s(get(k), i32.const(0))),
        ),
        ...storeC,
      ),
    ),
  );
  return assembleModule(memory, [f]);
}

/** Element (m, k) of A and (k, n) of B for the four transpose layouts. */
export interface GemmOperands {
  readonly a: Float32Array;
  readonly aOffset: number;
  readonly b: Float32Array;
  readonly bOffset: number;
  readonly M: number;
  readonly N: number;
  readonly K: number;
  /** A stored [K, M] instead of [M, K]. */
  readonly transA: boolean;
  /** B stored [N, K] instead of [K, N] (Linear's weight). */
  readonly transB: boolean;
}

export const roundUp = (n: number, m: number): number => Math.ceil(n / m) * m;

/** Below this many multiply-adds a product runs on the calling thread alone. */
const PARALLEL_MIN_MACS = 1 << 22;

/**
 * out[outOffset + m·N + n] = Σ_k A[m, k]·B[k, n] through the SIMD macro-kernel. With a pool and
 * a large enough product, each k pass is split over the threads — by A row panels, or by B
 * column panels when there are too few rows (a decode-sized Linear) — after the calling thread
 * has packed both operands into the shared heap. Every heap region is released on return.
 */
export async function wasmGemm(heap: WasmHeap, pool: WasmThreadPool | null, p: GemmOperands, out: Float32Array, outOffset: number): Promise<void> {
  const fma = heap.relaxedSimd;
  const kernel = await heap.module(`tensor-core/gemm4x8${fma ? '/fma' : ''}`, (memory) => buildGemmModule(memory, fma));
  const macro = exported<GemmMacro>(kernel.instance, 'gemm4x8');
  const { M, N, K } = p;
  if (M === 0 || N === 0) return;
  if (K === 0) {
    out.fill(0, outOffset, outOffset + M * N);
    return;
  }
  const threads = pool && M * N * K >= PARALLEL_MIN_MACS ? pool.size : 1;
  const mRows = Math.min(M, MROWS);
  const nCols = Math.min(roundUp(N, NR), NC);
  const kcMax = Math.min(roundUp(K, 2), KC);
  const ldc = nCols; // C buffer [mRows padded to MR, nCols]
  const aRegion = heap.alloc(roundUp(mRows, MR) * kcMax * 4, 'matmul');
  const bRegion = heap.alloc(nCols * kcMax * 4, 'matmul');
  const cRegion = heap.alloc(roundUp(mRows, MR) * ldc * 4, 'matmul');
  try {
    for (let m0 = 0; m0 < M; m0 += MROWS) {
      const mChunk = Math.min(MROWS, M - m0);
      const mPanels = Math.ceil(mChunk / MR);
      for (let n0 = 0; n0 < N; n0 += NC) {
        const nChunk = Math.min(NC, N - n0);
        const nPanels = Math.ceil(nChunk / NR);
        for (let k0 = 0; k0 < K; k0 += KC) {
          const kc = Math.min(KC, K - k0);
          const kcPad = roundUp(kc, 2);
          packB(p, heap.f32, bRegion.index, k0, kc, kcPad, n0, nChunk);
          packA(p, heap.f32, aRegion.index, m0, mChunk, k0, kc, kcPad);
          // one call: A panels [ip, ip + ni) × B panels [jp, jp + nj)
          const call = (ip: number, ni: number, jp: number, nj: number): number[] => [
            aRegion.byteOffset + ip * kcPad * MR * 4,
            bRegion.byteOffset + jp * kcPad * NR * 4,
            cRegion.byteOffset + (ip * MR * ldc + jp * NR) * 4,
            ldc * 4,
            ni,
            nj,
            kcPad,
            k0 > 0 ? 1 : 0,
          ];
          const byRows = mPanels >= 2 * threads || nPanels < threads;
          const lists = share(byRows ? mPanels : nPanels, threads).map(([from, to]) => {
            const calls: number[][] = [];
            // rows in blocks of MC so each call's A block stays in L2
            if (byRows) for (let ip = from; ip < to; ip += MC / MR) calls.push(call(ip, Math.min(MC / MR, to - ip), 0, nPanels));
            else for (let ip = 0; ip < mPanels; ip += MC / MR) calls.push(call(ip, Math.min(MC / MR, mPanels - ip), from, to - from));
            return calls;
          });
          if (pool && threads > 1) await pool.run(kernel, 'gemm4x8', lists);
          else for (const args of lists[0] ?? []) macro(...args);
        }
        const heapF32 = heap.f32;
        for (let r = 0; r < mChunk; r++) {
          const from = cRegion.index + r * ldc;
          out.set(heapF32.subarray(from, from + nChunk), outOffset + (m0 + r) * N + n0);
        }
      }
    }
  } finally {
    aRegion.release();
    bRegion.release();
    cRegion.release();
  }
}

/**
 * [from, to) ranges splitting `count` items over `parts` threads as evenly as possible, each
 * boundary a multiple of `unit` (the last range ends at `count`).
 */
export function share(count: number, parts: number, unit = 1): [number, number][] {
  const units = Math.ceil(count / unit);
  return Array.from({ length: parts }, (_, t): [number, number] => [Math.min(count, unit * Math.floor((units * t) / parts)), Math.min(count, unit * Math.floor((units * (t + 1)) / parts))]);
}

/** A rows m0..m0+mc−1, k0..k0+kc−1 → panels of MR rows, [k][MR], zero beyond mc and kc. */
function packA(p: GemmOperands, dst: Float32Array, base: number, m0: number, mc: number, k0: number, kc: number, kcPad: number): void {
  const { a, aOffset, M, K, transA } = p;
  const panels = Math.ceil(mc / MR);
  for (let panel = 0; panel < panels; panel++) {
    const o = base + panel * kcPad * MR;
    for (let r = 0; r < MR; r++) {
      const m = m0 + panel * MR + r;
      if (panel * MR + r >= mc) {
        for (let kk = 0; kk < kcPad; kk++) dst[o + kk * MR + r] = 0;
        continue;
      }
      if (transA) for (let kk = 0; kk < kc; kk++) dst[o + kk * MR + r] = a[aOffset + (k0 + kk) * M + m] as number;
      else {
        const src = aOffset + m * K + k0;
        for (let kk = 0; kk < kc; kk++) dst[o + kk * MR + r] = a[src + kk] as number;
      }
      for (let kk = kc; kk < kcPad; kk++) dst[o + kk * MR + r] = 0;
    }
  }
}

/** B k0..k0+kc−1, columns n0..n0+nc−1 → panels of NR columns, [k][NR], zero-padded. */
function packB(p: GemmOperands, dst: Float32Array, base: number, k0: number, kc: number, kcPad: number, n0: number, nc: number): void {
  const { b, bOffset, N, K, transB } = p;
  const panels = Math.ceil(nc / NR);
  for (let panel = 0; panel < panels; panel++) {
    const o = base + panel * kcPad * NR;
    const cols = Math.min(NR, nc - panel * NR);
    const n = n0 + panel * NR;
    if (transB) {
      for (let c = 0; c < cols; c++) {
        const src = bOffset + (n + c) * K + k0;
        for (let kk = 0; kk < kc; kk++) dst[o + kk * NR + c] = b[src + kk] as number;
      }
    } else {
      for (let kk = 0; kk < kc; kk++) {
        const src = bOffset + (k0 + kk) * N + n;
        for (let c = 0; c < cols; c++) dst[o + kk * NR + c] = b[src + c] as number;
      }
    }
    for (let c = cols; c < NR; c++) for (let kk = 0; kk < kc; kk++) dst[o + kk * NR + c] = 0;
    if (kcPad > kc) for (let c = 0; c < NR; c++) dst[o + kc * NR + c] = 0;
  }
}
