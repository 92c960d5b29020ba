// Masked softmax over the last axis in WebAssembly SIMD, with reference/softmax.ts's rule: an
// entry whose mask is −∞ is hidden (exactly 0, whatever x holds there); among visible entries a
// NaN or +∞ makes the row NaN; a row with nothing visible (or only −∞) is all zeros.
//
// The reference's Math.exp per element made a decode step's softmax over NSA's compressed blocks
// (16 heads × 4095) cost ~3.8 ms, more than the two products around it. Here each row takes three
// passes over f32x4 vectors — scale and mask with the running max, e^(s − max) with the sum,
// the division — with vector.ts's polynomial e^x (≤ 2 ulp). A row whose max is finite (the
// common one) takes passes 2 and 3 without their lane selects: e^(−∞ − max) is exactly 0
// already, and a sum ≥ 1 needs no guard in the division; rows with an infinite max (nothing
// visible, a visible +∞) or a NaN sum keep the selects (8 instructions fewer per vector; 0.84×
// the time in cache, session 7).
//
// x is read where it lies when it is a resident array, else copied in once; the output is written
// where it lies when it is resident (the CPU backend's Softmax makes a large result so), else to
// a region copied out. The last vector of a row loads past the row (`tail` lanes are real):
// those lanes are set to −∞ (then 0) before they reach the max or the sum, and stored lane by
// lane, so a row never writes into the next (threads split at rows).

import { type Expr, FunctionBuilder, type Local, type MemoryImport, assembleModule, f32, f32x4, forRange, get, i32, i32x4, i32x4Const, ifThen, set, v128 } from './emit.js';
import { type WasmHeap, exported } from './heap.js';
import type { WasmThreadPool } from './threads.js';
import { horizontalMax, horizontalSum, vectorExp } from './vector.js';

/** Below this many elements a softmax stays in JavaScript (copies would cost more). */
export const WASM_SOFTMAX_MIN_ELEMENTS = 4096;
/** Elements from which the rows are split over the pool's threads. */
const PARALLEL_MIN_ELEMENTS = 1 << 18;

/** (src, dst, rowBytes, vectors, tail, r0, r1, scale, mask, maskRows, maskStride): see buildSoftmaxModule. */
type SoftmaxKernel = (...args: number[]) => void;

/**
 * `softmax(src, dst, rowBytes, vectors, tail, r0, r1, scale, mask, maskRows, maskStride)`: rows
 * r0..r1−1 of src into dst (rows `rowBytes` apart, `vectors` f32x4 each, the last with `tail`
 * real lanes).
 * With `maskRows` ≠ 0, row r adds the mask at element offset maskRows[r] (i32; −1: no mask on
 * that row), read as a row (`maskStride` 1) or one value for the row (0).
 */
export function buildSoftmaxModule(memory: MemoryImport, fma: boolean): Uint8Array<ArrayBuffer> {
  const f = new FunctionBuilder('softmax');
  const src = f.param('i32');
  const dst = f.param('i32');
  const rowBytes = f.param('i32');
  const vectors = f.param('i32');
  const tail = f.param('i32');
  const r0 = f.param('i32');
  const r1 = f.param('i32');
  const scale = f.param('f32');
  const mask = f.param('i32');
  const maskRows = f.param('i32');
  const maskStride = f.param('i32');
  const r = f.local('i32');
  const v = f.local('i32');
  const px = f.local('i32'); // the row in dst
  const ps = f.local('i32'); // the row in src
  const pm = f.local('i32'); // this row's mask (byte address), or −1
  const s = f.local('v128');
  const m = f.local('v128');
  const mx = f.local('v128');
  const sum = f.local('v128');
  const tailLanes = f.local('v128');
  const tmp = f.local('v128');
  const inv = f.local('v128');
  const finite = f.local('i32'); // the row's max is finite
  const exp = vectorExp(f, { fma });
  const splat = (c: number): Expr => f32x4.splat(f32.const(c));
  const at = (l: Local): Expr => i32.add(get(px), i32.mul(get(l), i32.const(16)));
  // the real lanes of a row's last vector, one by one (lane 0 always is)
  const storeTail = (value: Local): Expr[] => [
    f32.store(at(v), f32x4.extract_lane(get(value), 0)),
    ...[1, 2, 3].map((lane) => ifThen(i32.gt_s(get(tail), i32.const(lane)), [f32.store(at(v), f32x4.extract_lane(get(value), lane), 4 * lane)])),
  ];
  const NEG_INF = splat(-Infinity);
  const maskVector = (): Expr =>
    // a row of the mask, or its one value splatted (maskStride 0)
    ifThenValue(i32.eqz(get(maskStride)), f32x4.splat(f32.load(get(pm))), v128.load(i32.add(get(pm), i32.mul(get(v), i32.const(16)))));
  // scale·x (+ mask, −∞ where the mask hides it), into s; `last`: lanes past the row become −∞
  const scaled = (last: boolean): Expr[] => [
    set(s, f32x4.mul(v128.load(i32.add(get(ps), i32.mul(get(v), i32.const(16)))), f32x4.splat(get(scale)))),
    ifThen(i32.ge_s(get(pm), i32.const(0)), [set(m, maskVector()), set(s, v128.bitselect(NEG_INF, f32x4.add(get(s), get(m)), f32x4.eq(get(m), NEG_INF)))]),
    ...(last ? [set(s, v128.bitselect(get(s), NEG_INF, get(tailLanes))), ...storeTail(s)] : [v128.store(at(v), get(s))]),
    // pmax keeps the running max where s is NaN (the sum below carries the NaN)
    set(mx, f32x4.pmax(get(mx), get(s))),
  ];
  // pass 2 (e into tmp, summed) or 3 (the division, into tmp) over the row: whole vectors, then
  // the last one, whose lanes past the row are 0 and not stored
  const eachVector = (divide: boolean, body: readonly Expr[]): Expr[] => {
    const finish = (last: boolean): Expr[] => [
      ...(last ? [set(tmp, v128.bitselect(get(tmp), splat(0), get(tailLanes)))] : []),
      ...(divide ? [] : [set(sum, f32x4.add(get(sum), get(tmp)))]),
      ...(last ? storeTail(tmp) : [v128.store(at(v), get(tmp))]),
    ];
    return [forRange(v, i32.const(0), i32.sub(get(vectors), i32.const(1)), 1, ...body, ...finish(false)), set(v, i32.sub(get(vectors), i32.const(1))), ...body, ...finish(true)];
  };
  f.body(
    set(tailLanes, i32x4.lt_s(i32x4Const([0, 1, 2, 3]), i32x4.splat(get(tail)))),
    forRange(
      r,
      get(r0),
      get(r1),
      1,
      set(px, i32.add(get(dst), i32.mul(get(r), get(rowBytes)))),
      set(ps, i32.add(get(src), i32.mul(get(r), get(rowBytes)))),
      set(pm, i32.const(-1)),
      ifThen(i32.ne(get(maskRows), i32.const(0)), [
        set(pm, i32.load(i32.add(get(maskRows), i32.mul(get(r), i32.const(4))))),
        ifThen(i32.ge_s(get(pm), i32.const(0)), [set(pm, i32.add(get(mask), i32.mul(get(pm), i32.const(4))))]),
      ]),
      set(mx, NEG_INF),
      forRange(v, i32.const(0), i32.sub(get(vectors), i32.const(1)), 1, ...scaled(false)),
      set(v, i32.sub(get(vectors), i32.const(1))),
      ...scaled(true),
      // every lane the row's max
      set(mx, f32x4.splat(horizontalMax(get(mx), tmp))),
      // the common row: a finite max. Then e^(s − max) is exactly 0 for a hidden entry
      // (−∞ − max = −∞) and the sum is ≥ 1 or NaN, so neither pass needs its lane selects
      set(finite, f32.lt(f32.abs(f32x4.extract_lane(get(mx), 0)), f32.const(Infinity))),
      set(sum, splat(0)),
      ifThen(get(finite), eachVector(false, [set(tmp, exp(f32x4.sub(v128.load(at(v)), get(mx))))]), eachVector(false, [
        set(s, v128.load(at(v))),
        // a hidden entry (−∞) is 0 even when the max is −∞ too (−∞ − −∞ is NaN)
        set(tmp, v128.bitselect(splat(0), exp(f32x4.sub(get(s), get(mx))), f32x4.eq(get(s), NEG_INF))),
      ])),
      set(sum, f32x4.splat(horizontalSum(get(sum), tmp))),
      set(inv, f32x4.div(splat(1), get(sum))),
      // 1/Σ; where e = 0 the output is 0 even if Σ is 0 or NaN (hidden entries, empty rows)
      ifThen(
        i32.and(get(finite), f32.eq(f32x4.extract_lane(get(sum), 0), f32x4.extract_lane(get(sum), 0))),
        eachVector(true, [set(tmp, f32x4.mul(v128.load(at(v)), get(inv)))]),
        eachVector(true, [set(s, v128.load(at(v))), set(tmp, v128.bitselect(splat(0), f32x4.mul(get(s), get(inv)), f32x4.eq(get(s), splat(0))))]),
      ),
    ),
  );
  return assembleModule(memory, [f]);
}

/** if/else as a value of type v128. */
function ifThenValue(cond: Expr, then: Expr, otherwise: Expr): Expr {
  return [...cond, 0x04, 0x7b, ...then, 0x05, ...otherwise, 0x0b];
}

export interface SoftmaxOperands {
  readonly x: Float32Array;
  /** Elements per row (the last axis). */
  readonly N: number;
  readonly scale: number;
  readonly mask: Float32Array | null;
  /** Element offset of row r's mask in `mask`, or −1 for none. */
  readonly maskRowOffset: (row: number) => number;
  /** 1: the mask varies along the row; 0: one value per row. */
  readonly maskStride: 0 | 1;
}

/** out = softmax(x) by rows (see the module comment); every heap region is released on return. */
export async function wasmSoftmax(heap: WasmHeap, pool: WasmThreadPool | null, p: SoftmaxOperands, out: Float32Array): Promise<void> {
  const { x, N, mask } = p;
  const rows = N === 0 ? 0 : x.length / N;
  if (rows === 0) return;
  const fma = heap.relaxedSimd;
  const kernel = await heap.module(`tensor-core/softmax${fma ? '/fma' : ''}`, (memory) => buildSoftmaxModule(memory, fma));
  const vectors = Math.ceil(N / 4);
  using scope = heap.scope('softmax');
  const { take } = scope;
  // x in place when it lives in the heap with a vector's worth of readable memory after it
  // (the last row's last vector loads past its end), else copied in
  const src = heap.operandAt(x, 0, x.length, take, 16);
  // into `out` where it lies when it is a resident array (tails are stored lane by lane: no
  // write past a row), else through a region copied out after
  const outAt = heap.byteOffsetOf(out);
  const dst = outAt ?? take(4 * x.length + 16).byteOffset;
  let maskAt = 0;
  let maskRows = 0;
  if (mask) {
    const mr = take(4 * mask.length + 16); // the last vector of a row may read past the mask's end
    heap.f32.set(mask, mr.index);
    const offsets = take(4 * rows);
    const i32 = heap.i32;
    for (let row = 0; row < rows; row++) i32[offsets.index + row] = p.maskRowOffset(row);
    maskAt = mr.byteOffset;
    maskRows = offsets.byteOffset;
  }
  const call = (r0: number, r1: number): number[] => [src, dst, 4 * N, vectors, N - 4 * (vectors - 1), r0, r1, p.scale, maskAt, maskRows, p.maskStride];
  const threads = pool && rows > 1 && x.length >= PARALLEL_MIN_ELEMENTS ? Math.min(pool.size, rows) : 1;
  if (pool && threads > 1) {
    await pool.run(
      kernel,
      'softmax',
      Array.from({ length: threads }, (_, t) => [call(Math.floor((rows * t) / threads), Math.floor((rows * (t + 1)) / threads))]),
    );
  } else exported<SoftmaxKernel>(kernel.instance, 'softmax')(...call(0, rows));
  if (outAt === null) out.set(heap.f32.subarray(dst / 4, dst / 4 + x.length));
}
