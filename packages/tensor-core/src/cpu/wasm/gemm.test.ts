// The SIMD GEMM against the float64 reference (tolerances derived from f32 arithmetic) on shapes
// that cross every blocking boundary: k passes (KC 256), column blocks (NC 1024, fewer columns
// when K is long), row blocks (MC 128, the jobs of the threads' queue), partial 4×8 edge tiles,
// K not a multiple of the 4-step pack blocks, all four transpose layouts; C written in place
// into a resident output and through a padded buffer; and the CPU backend's MatMul / Linear with
// SIMD on against the plain TypeScript kernels.
import { SeededRandom } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import { gemm } from '../../reference/matmul.js';
import { expectWithin } from '../../testing/fixtures/check.js';
import * as ref from '../../testing/fixtures/reference64.js';
import * as op from '../../ops/index.js';
import { CpuBackend } from '../backend.js';
import { wasmGemm } from './gemm.js';
import { WasmHeap, wasmSimdUnsupportedReason } from './heap.js';

const rng = new SeededRandom(12);

describe('wasm SIMD gemm', () => {
  it('runs here (Node 20 has WebAssembly SIMD)', () => {
    expect(wasmSimdUnsupportedReason()).toBeNull();
    expect(new CpuBackend().wasm).not.toBeNull();
    expect(new CpuBackend({ simd: false }).wasmUnavailable).toBe('SIMD kernels switched off (simd: false)');
  });

  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [4, 8, 2],
    [5, 13, 7],
    [33, 17, 300],
    [130, 1030, 260],
    [257, 9, 3],
    [3, 2049, 20],
  ];
  // package.json runs these tests with --experimental-wasm-relaxed-simd (Node 20): the FMA
  // micro-kernel where it validates, and the mul + add one
  it('builds the FMA micro-kernel where relaxed SIMD validates', () => {
    expect(new WasmHeap().relaxedSimd).toBe(true);
  });
  for (const [M, N, K] of shapes) {
    for (const [tA, tB, fma] of [
      [false, false, true],
      [true, false, false],
      [false, true, true],
      [true, true, false],
    ] as const) {
      it(`M ${M} N ${N} K ${K}${tA ? ' Aᵀ' : ''}${tB ? ' Bᵀ' : ''}${fma ? ' (FMA)' : ' (mul + add)'}`, async () => {
        const heap = new WasmHeap({ relaxedSimd: fma });
        const a = rng.normalArray(M * K);
        const b = rng.normalArray(K * N);
        const out = new Float32Array(M * N + 3).fill(Number.NaN);
        await wasmGemm(heap, null, { a, aOffset: 0, b, bOffset: 0, M, N, K, transA: tA, transB: tB }, out, 3);
        const expected = ref.matmul64(a, tA ? [K, M] : [M, K], b, tB ? [N, K] : [K, N], tA, tB);
        expect(Number.isNaN(out[2] as number), 'writes nothing before outOffset').toBe(true);
        const i = ref.firstMismatch(out.subarray(3), expected);
        expect(i, i < 0 ? '' : `element ${i}: ${out[3 + i]} vs ${expected.values[i]}`).toBe(-1);
        expect(heap.liveBytes(), 'every region released').toBe(0);
        // and the plain reference agrees within the same bound
        const plain = new Float32Array(M * N);
        gemm(a, 0, b, 0, plain, 0, M, N, K, tA, tB);
        expect(ref.firstMismatch(plain, expected)).toBe(-1);
      });
    }
  }

  it('reads operands at offsets (batched MatMul slices)', async () => {
    const heap = new WasmHeap();
    const [M, N, K] = [9, 11, 40];
    const a = rng.normalArray(5 + M * K);
    const b = rng.normalArray(7 + K * N);
    const out = new Float32Array(M * N);
    await wasmGemm(heap, null, { a, aOffset: 5, b, bOffset: 7, M, N, K, transA: false, transB: false }, out, 0);
    const expected = ref.matmul64(a.slice(5), [M, K], b.slice(7), [K, N], false, false);
    expect(ref.firstMismatch(out, expected)).toBe(-1);
  });

  it('K = 0 gives zeros', async () => {
    const out = new Float32Array(6).fill(1);
    await wasmGemm(new WasmHeap(), null, { a: new Float32Array(0), aOffset: 0, b: new Float32Array(0), bOffset: 0, M: 2, N: 3, K: 0, transA: false, transB: false }, out, 0);
    expect([...out]).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('splits a large product over worker threads, by row panels or (few rows) by column panels', async () => {
    const backend = new CpuBackend({ threads: 2 });
    expect(backend.wasmThreads?.size, backend.threadsUnavailable ?? '').toBe(2);
    try {
      for (const [M, K, N] of [
        [600, 300, 40],
        [3, 1100, 1500],
      ] as const) {
        const a = rng.normalArray(M * K);
        const b = rng.normalArray(K * N);
        // B (6.6 MB in the second product) lives in the heap: disposed, it gives its region back
        using ta = op.tensor(backend, a, [M, K]);
        using tb = op.tensor(backend, b, [K, N]);
        using out = await op.matmul(ta, tb);
        await expectWithin(out, ref.matmul64(a, [M, K], b, [K, N], false, false), `threaded matmul ${M}×${K}·${K}×${N}`);
      }
      expect(backend.wasm?.liveBytes()).toBe(0);
    } finally {
      await backend.dispose();
    }
  });

  it('writes C in place into a resident output with whole 4×8 tiles, and through a padded buffer otherwise', async () => {
    const heap = new WasmHeap({ shared: true });
    for (const [M, N, K, tA, tB] of [
      [64, 128, 40, false, false],
      [64, 128, 37, true, true],
      [66, 130, 41, false, true],
      [3, 9, 5, true, false],
    ] as const) {
      const a = heap.allocResident(M * K, 'test');
      const b = heap.allocResident(K * N, 'test');
      const out = heap.allocResident(M * N + 16, 'test');
      if (!a || !b || !out) throw new Error('a shared heap holds resident arrays');
      a.data.set(rng.normalArray(M * K));
      b.data.set(rng.normalArray(K * N));
      out.data.fill(Number.NaN);
      await wasmGemm(heap, null, { a: a.data, aOffset: 0, b: b.data, bOffset: 0, M, N, K, transA: tA, transB: tB }, out.data, 8);
      const expected = ref.matmul64(a.data, tA ? [K, M] : [M, K], b.data, tB ? [N, K] : [K, N], tA, tB);
      const i = ref.firstMismatch(out.data.subarray(8, 8 + M * N), expected);
      expect(i, `${M}×${N}×${K}: element ${i}`).toBe(-1);
      expect([...out.data.subarray(0, 8), ...out.data.subarray(8 + M * N)].every(Number.isNaN), 'writes nothing outside the output').toBe(true);
      for (const r of [a, b, out]) r.release();
    }
    expect(heap.liveBytes()).toBe(0);
  });

  // 2100 values of k: B blocks of 248 columns (all of K in 2 MiB), so 252 columns are a block and
  // an edge block of 4; 385 rows are 4 row blocks (the last of 1 row) shared by the threads'
  // queue; 40 rows are too few to share, so each thread takes its own range of columns
  for (const [fma, shapes] of [
    [
      true,
      [
        [385, 252, 2100, false, true],
        [40, 1030, 1203, true, false],
      ],
    ],
    [
      false,
      [
        [388, 256, 2101, true, false],
        [36, 1032, 1200, false, true],
      ],
    ],
  ] as const) {
    it(`two threads over the row-block queue and over column ranges (${fma ? 'FMA' : 'mul + add'})`, async () => {
      const backend = new CpuBackend({ threads: 2, fma });
      expect(backend.wasmThreads?.size, backend.threadsUnavailable ?? '').toBe(2);
      try {
        for (const [M, N, K, tA, tB] of shapes) {
          const a = rng.normalArray(M * K);
          const b = rng.normalArray(K * N);
          using ta = op.tensor(backend, a, tA ? [K, M] : [M, K]);
          using tb = op.tensor(backend, b, tB ? [N, K] : [K, N]);
          using out = await op.matmul(ta, tb, { transposeA: tA, transposeB: tB });
          await expectWithin(out, ref.matmul64(a, tA ? [K, M] : [M, K], b, tB ? [N, K] : [K, N], tA, tB), `matmul ${M}×${N}×${K}${tA ? ' Aᵀ' : ''}${tB ? ' Bᵀ' : ''}`);
        }
        expect(backend.wasm?.liveBytes()).toBe(0);
      } finally {
        await backend.dispose();
      }
    });
  }

  it('a batched MatMul and a Linear with bias write into resident results in place (2 threads)', async () => {
    const backend = new CpuBackend({ threads: 2 });
    try {
      // [4, 256, 64] · [64, 256] → [4, 256, 256]: 1 MiB, resident; each product at its offset
      const [Bt, M, K, N] = [4, 256, 64, 256];
      const a = rng.normalArray(Bt * M * K);
      const b = rng.normalArray(K * N);
      using mm = await op.matmul(op.tensor(backend, a, [Bt, M, K]), op.tensor(backend, b, [K, N]));
      expect(backend.wasm?.byteOffsetOf(backend.view(mm))).not.toBeNull();
      await expectWithin(mm, ref.matmul64(a, [Bt, M, K], b, [K, N], false, false), 'batched matmul, resident result');
      const x = rng.normalArray(2 * M * K);
      const w = rng.normalArray(2 * N * K);
      const bias = rng.normalArray(2 * N);
      using lin = await op.linear(op.tensor(backend, x, [2, M, K]), op.tensor(backend, w, [2 * N, K]), op.tensor(backend, bias, [2 * N]));
      expect(backend.wasm?.byteOffsetOf(backend.view(lin))).not.toBeNull();
      await expectWithin(lin, ref.linear64(x, K, w, 2 * N, bias), 'linear + bias, resident result');
    } finally {
      await backend.dispose();
    }
  });

  it('CpuBackend MatMul and Linear take it above the size threshold, matching the float64 reference', async () => {
    const simd = new CpuBackend();
    const plain = new CpuBackend({ simd: false });
    const [B, M, K, N] = [2, 70, 96, 50];
    const a = rng.normalArray(B * M * K);
    const b = rng.normalArray(K * N);
    const w = rng.normalArray(N * K);
    const bias = rng.normalArray(N);
    for (const backend of [simd, plain]) {
      using mm = await op.matmul(op.tensor(backend, a, [B, M, K]), op.tensor(backend, b, [K, N]));
      await expectWithin(mm, ref.matmul64(a, [B, M, K], b, [K, N], false, false), 'batched matmul');
      using lin = await op.linear(op.tensor(backend, a, [B, M, K]), op.tensor(backend, w, [N, K]), op.tensor(backend, bias, [N]));
      await expectWithin(lin, ref.linear64(a, K, w, N, bias), 'linear + bias');
    }
    expect(simd.wasm?.liveBytes()).toBe(0);
    expect(simd.info.adapter).toContain('WebAssembly SIMD');
  });
});
