// f32 GEMM in WebAssembly SIMD, BLIS-style: operands are packed into panels (A: 4 rows
// interleaved per k, B: 8 columns per k; gemm-pack.ts), and a 4×8 micro-kernel keeps the 4×8
// block of C in eight f32x4 registers while it streams one A panel and one B panel: per k, two B
// vectors, four broadcast A values, eight multiply-adds (14 of the 16 SIMD registers of x86-64).
// Blocking: kc = 256 values of k per pass (a B panel, 8 KiB, stays in L1; an A block of MC = 128
// rows, 128 KiB, in L2); a packed B block holds ≤ 1024 columns and all of K (≤ 2 MiB, in L3).
//
// One parallel region per product (one hand-off): every thread runs a call list — pack a B
// block, then take row blocks from a queue shared with the other threads (`rows`: per k pass,
// pack the block's A, multiply), for each column block — in WebAssembly. Operands are read where
// they lie in the heap, and C is written into the output in place when the output is in the
// heap and has whole 4×8 tiles. Every thread packs each B block for itself (K·N values per
// thread against M·N·K / threads multiply-adds; all packing together is ~5% of a 1024³ product
// on one thread), where sharing one copy would need a barrier per block.
//
// Where the engine validates relaxed SIMD (Node 22+, browsers; Node 20 behind
// --experimental-wasm-relaxed-simd) each multiply-add is one `f32x4.relaxed_madd` (an FMA on
// x86 with FMA3); elsewhere mul + add. The module is built once per heap for one of the two.

import { type Expr, FunctionBuilder, type Local, type MemoryImport, assembleModule, block, br, brIf, call, f32x4, forRange, get, i32, ifThen, loop, select, seq, set, v128 } from './emit.js';
import { packFunction } from './gemm-pack.js';
import { type WasmHeap, exported } from './heap.js';
import type { WasmThreadPool } from './threads.js';

const MR = 4;
const NR = 8;
const KC = 256;
const MC = 128;
const NC = 1024;
const MIN_NC = 128;
const B_BLOCK_BYTES = 2 << 20;

/**
 * The macro-kernel gemm4x8(aPack, bPack, c, ldcBytes, mPanels, nPanels, kc, accumulate): every
 * (B panel, A panel) pair of one packed block, C += or = A·B. The `strided` layout
 * (gemm-small.ts) reads both operands where they lie: A as rows (`aRow` bytes apart), B's row k
 * at `bStep`·k and its panels `bPanel` bytes apart (three more parameters).
 */
export function gemmFunction(fma: boolean, layout: 'packed' | 'strided' = 'packed'): FunctionBuilder {
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
  return f;
}

/** A module exporting gemm4x8 alone (gemm-small.ts's strided kernel, the ceiling bench). */
export function buildGemmModule(memory: MemoryImport, fma: boolean, layout: 'packed' | 'strided' = 'packed'): Uint8Array<ArrayBuffer> {
  return assembleModule(memory, [gemmFunction(fma, layout)]);
}

/**
 * rows(counter, jobs, a, aLane, aStep, aPack, M, K, bPack, c, ldcBytes, nPanels): row blocks of
 * MC rows taken from a queue (an atomic add on the i32 at `counter`) until `jobs` are taken;
 * each block, every k pass: pack A's block (pack4 → aPack), multiply it with the packed B block
 * (all of K for nPanels panels, pass by pass at bPack) into C. A job owns its rows of C for all
 * of K, so no two threads ever accumulate into one tile, and a thread slowed by another process
 * simply takes fewer blocks.
 */
function rowsFunction(): FunctionBuilder {
  const f = new FunctionBuilder('rows');
  const counter = f.param('i32');
  const jobs = f.param('i32');
  const a = f.param('i32');
  const aLane = f.param('i32');
  const aStep = f.param('i32');
  const aPack = f.param('i32');
  const M = f.param('i32');
  const K = f.param('i32');
  const bPack = f.param('i32');
  const c = f.param('i32');
  const ldc = f.param('i32');
  const nPanels = f.param('i32');
  const m = f.local('i32');
  const count = f.local('i32');
  const k0 = f.local('i32');
  const kc = f.local('i32');
  const min = (x: Expr, y: Expr): Expr => select(x, y, i32.lt_s(x, y));
  f.body(
    block(
      loop(
        set(m, i32.atomic_rmw_add(get(counter), i32.const(1))),
        brIf(1, i32.ge_s(get(m), get(jobs))),
        set(m, i32.mul(get(m), i32.const(MC))),
        set(count, min(i32.sub(get(M), get(m)), i32.const(MC))),
        forRange(
          k0,
          i32.const(0),
          get(K),
          KC,
          set(kc, min(i32.sub(get(K), get(k0)), i32.const(KC))),
          call(FN_PACK_A, i32.add(get(a), i32.add(i32.mul(get(m), get(aLane)), i32.mul(get(k0), get(aStep)))), get(aLane), get(aStep), get(aPack), get(count), get(kc)),
          call(
            FN_GEMM,
            get(aPack),
            i32.add(get(bPack), i32.mul(get(k0), i32.mul(get(nPanels), i32.const(NR * 4)))),
            i32.add(get(c), i32.mul(get(m), get(ldc))),
            get(ldc),
            i32.shr_s(i32.add(get(count), i32.const(MR - 1)), i32.const(2)),
            get(nPanels),
            get(kc),
            i32.gt_s(get(k0), i32.const(0)),
          ),
        ),
        br(0),
      ),
    ),
  );
  return f;
}

// function indices in the packed module, and the opcodes of its `step` export
const FN_GEMM = 0;
const FN_PACK_A = 1;
const FN_PACK_B = 2;
const FN_ROWS = 3;
const OP_PACK_B = 0;
const OP_ROWS = 1;
const STEP_ARGS = 12;

/**
 * The packed GEMM's module: gemm4x8, pack4 (A), pack8 (B), rows, and `step(op, x0…x11)`
 * calling pack8 or rows, so one thread's whole program is a list of calls to a single export
 * (what the pool runs).
 */
function buildPackedGemmModule(memory: MemoryImport, fma: boolean): Uint8Array<ArrayBuffer> {
  const f = new FunctionBuilder('step');
  const opcode = f.param('i32');
  const x = Array.from({ length: STEP_ARGS }, () => f.param('i32'));
  const args = (n: number): Expr[] => x.slice(0, n).map(get);
  f.body(ifThen(i32.eq(get(opcode), i32.const(OP_PACK_B)), [call(FN_PACK_B, ...args(6))], [call(FN_ROWS, ...args(12))]));
  return assembleModule(memory, [gemmFunction(fma), packFunction(MR), packFunction(NR), rowsFunction(), f]);
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
 * out[outOffset + m·N + n] = Σ_k A[m, k]·B[k, n] through the SIMD kernels. With a pool and a
 * large enough product, the threads split C by A row panels — or by B column panels when there
 * are too few rows (a decode-sized Linear) — and each runs its whole share in one call list.
 * Every heap region is released on return.
 */
export async function wasmGemm(heap: WasmHeap, pool: WasmThreadPool | null, p: GemmOperands, out: Float32Array, outOffset: number): Promise<void> {
  const fma = heap.relaxedSimd;
  const kernel = await heap.module(`tensor-core/gemm${fma ? '/fma' : ''}`, (memory) => buildPackedGemmModule(memory, fma));
  const { M, N, K, transA, transB } = p;
  if (M === 0 || N === 0) return;
  if (K === 0) {
    out.fill(0, outOffset, outOffset + M * N);
    return;
  }
  const threads = pool && M * N * K >= PARALLEL_MIN_MACS ? pool.size : 1;
  using scope = heap.scope('matmul');
  const a = heap.operandAt(p.a, p.aOffset, M * K, scope.take);
  const b = heap.operandAt(p.b, p.bOffset, K * N, scope.take);
  // byte strides of A's lanes (rows m) and steps (k), and of B's lanes (columns n) and steps
  const aLane = transA ? 4 : 4 * K;
  const aStep = transA ? 4 * M : 4;
  const bLane = transB ? 4 * K : 4;
  const bStep = transB ? 4 : 4 * N;
  // C straight into the output when it lies in the heap and no 4×8 tile overhangs it
  const outAt = heap.byteOffsetOf(out);
  const direct = outAt !== null && M % MR === 0 && N % NR === 0;
  const ldc = direct ? N : roundUp(N, NR);
  const c = direct ? outAt + 4 * outOffset : scope.take(roundUp(M, MR) * ldc * 4).byteOffset;
  const nPanels = Math.ceil(N / NR);
  // threads share the row blocks of each column block through one queue, or (too few rows to
  // share) each takes a range of column panels and goes through every row block itself
  const byRows = Math.ceil(M / MC) >= 2 * threads || nPanels < threads;
  const ncMax = columnBlock(K);
  const blocks = Math.ceil(N / ncMax);
  const queues = scope.take(4 * threads * blocks);
  heap.i32.fill(0, queues.index, queues.index + threads * blocks);
  const ranges = byRows ? Array.from({ length: threads }, (): [number, number] => [0, nPanels]) : share(nPanels, threads);
  const programs = ranges.map(([j0, j1], t) => {
    if (j0 === j1) return [];
    const nc = Math.min(ncMax, (j1 - j0) * NR);
    const aPack = scope.take(MC * Math.min(K, KC) * 4).byteOffset;
    const bPack = scope.take(nc * K * 4).byteOffset;
    const calls: number[][] = [];
    for (let jn = j0, block = 0; jn < j1; jn += nc / NR, block++) {
      const nj = Math.min(nc / NR, j1 - jn);
      const n = jn * NR;
      const cols = Math.min(nj * NR, N - n);
      for (let k0 = 0; k0 < K; k0 += KC) calls.push(padArgs([OP_PACK_B, b + n * bLane + k0 * bStep, bLane, bStep, bPack + k0 * nj * NR * 4, cols, Math.min(KC, K - k0)]));
      const queue = queues.byteOffset + 4 * ((byRows ? 0 : t) * blocks + block);
      calls.push([OP_ROWS, queue, Math.ceil(M / MC), a, aLane, aStep, aPack, M, K, bPack, c + 4 * n, 4 * ldc, nj]);
    }
    return calls;
  });
  if (pool && threads > 1) await pool.run(kernel, 'step', programs);
  else {
    const step = exported<(...args: number[]) => void>(kernel.instance, 'step');
    for (const args of programs[0] ?? []) step(...args);
  }
  if (direct) return;
  const heapF32 = heap.f32;
  if (ldc === N) out.set(heapF32.subarray(c / 4, c / 4 + M * N), outOffset);
  else for (let r = 0; r < M; r++) out.set(heapF32.subarray(c / 4 + r * ldc, c / 4 + r * ldc + N), outOffset + r * N);
}

/** One step call's arguments, zero-filled to the export's arity. */
const padArgs = (args: number[]): number[] => [...args, ...new Array<number>(STEP_ARGS + 1 - args.length).fill(0)];

/**
 * Columns per packed B block: the block holds all of K (its k passes one after another), so at
 * most B_BLOCK_BYTES (in L3 beside the other thread's copy), and at least MIN_NC columns so
 * that re-packing A per block stays small against the multiply-adds.
 */
function columnBlock(K: number): number {
  return Math.max(MIN_NC, Math.min(NC, Math.floor(B_BLOCK_BYTES / (4 * K) / NR) * NR));
}

/**
 * [from, to) ranges splitting `count` items over `parts` threads as evenly as possible, each
 * boundary a multiple of `unit` (the last range ends at `count`).
 */
export function share(count: number, parts: number, unit = 1): [number, number][] {
  const units = Math.ceil(count / unit);
  return Array.from({ length: parts }, (_, t): [number, number] => [Math.min(count, unit * Math.floor((units * t) / parts)), Math.min(count, unit * Math.floor((units * (t + 1)) / parts))]);
}
