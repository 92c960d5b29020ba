// The few-rows GEMM (B read in place) against the float64 reference, with tolerances derived
// from f32 arithmetic: both layouts of B, A transposed or not, row counts around the 2-row and
// 4-row blocks, N tails of the 4-row (Bᵀ) and 8-column (B) blocks, B resident in the heap or
// copied in, one thread or two; and the CPU backend routing decode-shaped products to it.
import { SeededRandom } from '@attnkit/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { expectWithin } from '../../testing/fixtures/check.js';
import * as ref from '../../testing/fixtures/reference64.js';
import * as op from '../../ops/index.js';
import { CpuBackend } from '../backend.js';
import { SMALL_M_MAX, smallGemmDeclines, wasmSmallGemm } from './gemm-small.js';
import { wasmGemm } from './gemm.js';
import { WasmHeap } from './heap.js';
import { WasmThreadPool } from './threads.js';

const rng = new SeededRandom(21);

describe('wasm SIMD few-rows gemm (B in place)', () => {
  const sharedHeap = new WasmHeap({ shared: true });
  const heap = sharedHeap;
  // the mul + add kernels (engines without relaxed SIMD), on an unshared heap: B copied in
  const plainHeap = new WasmHeap({ relaxedSimd: false });
  const pool = new WasmThreadPool(heap, 2);
  afterAll(() => {
    pool.terminate();
  });

  const shapes: [number, number, number][] = [
    [1, 4, 4],
    [1, 1792, 256],
    // past PARALLEL_MIN_MACS (two threads): one row (axpy with N and K tails), two rows
    [1, 1030, 1031],
    [1, 4100, 300],
    [2, 600, 1001],
    // B narrower than one vector or than a 4×8 tile (axpy for any row count); 3 and 12 rows
    // over two threads (axpy, strided)
    [7, 3, 33],
    [6, 7, 20],
    [3, 800, 450],
    [12, 700, 130],
    [2, 9, 12],
    [3, 13, 20],
    [5, 8, 300],
    [16, 4095, 192],
    [16, 130, 1000],
    [12, 130, 1000],
    [33, 67, 128],
  ];
  for (const [M, N, K] of shapes) {
    for (const transB of [true, false]) {
      for (const transA of [false, true]) {
        const p0 = { M, N, K, transA, transB };
        const declined = smallGemmDeclines({ ...p0, a: new Float32Array(0), aOffset: 0, b: new Float32Array(0), bOffset: 0 });
        if (declined !== null) continue;
        for (const resident of [true, false]) {
          const threads = resident ? 2 : 1;
          it(`M ${M} N ${N} K ${K}${transA ? ' Aᵀ' : ''}${transB ? ' Bᵀ' : ''}, B ${resident ? 'resident, FMA, 2 threads' : 'copied in, mul + add, 1 thread'}`, async () => {
            const heap = resident ? sharedHeap : plainHeap;
            const a = rng.normalArray(3 + M * K);
            const bHost = rng.normalArray(K * N);
            const liveBefore = heap.liveBytes();
            const held = resident ? heap.allocResident(5 + K * N, 'test') : null;
            const b = held ? held.data : new Float32Array(5 + K * N);
            b.set(bHost, 5);
            const out = new Float32Array(M * N + 2).fill(Number.NaN);
            try {
              await wasmSmallGemm(heap, threads > 1 ? pool : null, { a, aOffset: 3, b, bOffset: 5, M, N, K, transA, transB }, out, 2);
            } finally {
              held?.release();
            }
            const expected = ref.matmul64(a.subarray(3), transA ? [K, M] : [M, K], bHost, transB ? [N, K] : [K, N], transA, transB);
            expect(Number.isNaN(out[1] as number), 'writes nothing before outOffset').toBe(true);
            const i = ref.firstMismatch(out.subarray(2), expected);
            expect(i, i < 0 ? '' : `element ${i}: ${out[2 + i]} vs ${expected.values[i]}`).toBe(-1);
            expect(heap.liveBytes(), 'every region released').toBe(liveBefore);
          });
        }
      }
    }
  }

  it('builds the FMA kernels where relaxed SIMD validates, mul + add otherwise', () => {
    expect(sharedHeap.relaxedSimd).toBe(true); // package.json runs vitest with --experimental-wasm-relaxed-simd
    expect(plainHeap.relaxedSimd).toBe(false);
  });

  it('declines what it does not cover, saying why', () => {
    const p = (M: number, N: number, K: number, transB: boolean) => ({ a: new Float32Array(0), aOffset: 0, b: new Float32Array(0), bOffset: 0, M, N, K, transA: false, transB });
    expect(smallGemmDeclines(p(SMALL_M_MAX.transB + 1, 64, 64, true))).toMatch(/rows of A/);
    expect(smallGemmDeclines(p(SMALL_M_MAX.plain + 1, 64, 64, false))).toMatch(/rows of A/);
    expect(smallGemmDeclines(p(4, 64, 30, true))).toMatch(/K % 4 = 0/);
    expect(smallGemmDeclines(p(4, 3, 32, true))).toMatch(/N ≥ 4/);
    expect(smallGemmDeclines(p(4, 7, 32, false))).toBeNull(); // B [K, N] of any width: streamed by rows (axpy)
    expect(smallGemmDeclines(p(SMALL_M_MAX.transB, 64, 64, true))).toBeNull();
  });

  it('a NaN in B reaches exactly the outputs it feeds; garbage past B never does', async () => {
    // B [K, N]: 1–3 rows take axpy, whose last vector of each row of 13 reads past it, more the
    // strided 4×8 kernel; Bᵀ: dot2x4
    for (const [M, N, K, transB] of [[3, 12, 8, true], [3, 13, 9, false], [5, 12, 8, false], [1, 13, 8, true], [1, 13, 9, false], [2, 13, 8, true], [2, 13, 9, false]] as const) {
      const a = rng.normalArray(M * K);
      const b = rng.normalArray(K * N + 8);
      b.fill(Number.NaN, K * N); // past B's end: read by the last partial panel, never kept
      b[transB ? 5 * K + 2 : 2 * N + 5] = Number.NaN; // element (k 2, n 5)
      const out = new Float32Array(M * N);
      await wasmSmallGemm(heap, null, { a, aOffset: 0, b, bOffset: 0, M, N, K, transA: false, transB }, out, 0);
      for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) expect(Number.isNaN(out[m * N + n] as number), `M ${M}: (${m}, ${n}) ${transB ? 'Bᵀ' : 'B'}`).toBe(n === 5);
    }
  });

  it('the packed kernel still splits few rows by column panels over the threads', async () => {
    const [M, N, K] = [3, 1500, 300];
    const a = rng.normalArray(M * K);
    const b = rng.normalArray(K * N);
    const out = new Float32Array(M * N);
    await wasmGemm(heap, pool, { a, aOffset: 0, b, bOffset: 0, M, N, K, transA: false, transB: false }, out, 0);
    expect(ref.firstMismatch(out, ref.matmul64(a, [M, K], b, [K, N], false, false))).toBe(-1);
  });

  it('CpuBackend: a decode-step Linear and attention-score MatMul take it, matching the float64 reference', async () => {
    const backend = new CpuBackend({ threads: 2 });
    try {
      const [O, I] = [700, 512]; // 1.4 MB weight: resident in the heap
      const x = rng.normalArray(I);
      const w = rng.normalArray(O * I);
      const bias = rng.normalArray(O);
      using lin = await op.linear(op.tensor(backend, x, [1, 1, I]), op.tensor(backend, w, [O, I]), op.tensor(backend, bias, [O]));
      await expectWithin(lin, ref.linear64(x, I, w, O, bias), 'one-token linear');
      const [G, N, D] = [16, 1000, 64];
      const q = rng.normalArray(G * D);
      const k = rng.normalArray(N * D);
      using s = await op.matmul(op.tensor(backend, q, [1, G, D]), op.tensor(backend, k, [1, N, D]), { transposeB: true });
      await expectWithin(s, ref.matmul64(q, [1, G, D], k, [1, N, D], false, true), 'scores');
      expect(backend.wasm?.liveBytes()).toBe(backend.wasm?.residentBytes());
    } finally {
      await backend.dispose();
    }
  });
});
