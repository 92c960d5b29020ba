// The conformance suite: every primitive on every backend available here (CI: cpu, gpujs-cpu,
// gpujs-webasm, gpujs-webgpu), against float64 references with tolerances derived from f32
// arithmetic (src/testing/fixtures/reference64.ts), or bit for bit against the CPU backend for
// the operations that are exact (layout, gather, top-k, casts, in-place writes).
import { SeededRandom, describeEachBackend } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import { CpuBackend } from './cpu/backend.js';
import { type DType, decodeBf16, decodeF16, encodeBf16, encodeF16 } from './dtype.js';
import type { BinaryOp, RopeLayout, UnaryOp } from './kernels.js';
import * as op from './ops/index.js';
import { ropeInvFreq } from './rope-frequencies.js';
import type { Tensor } from './tensor.js';
import { availableBackends } from './testing/index.js';
import { formatShape as fmt } from './errors.js';
import { expectRelative, expectSame, expectWithin } from './testing/fixtures/check.js';
import * as ref from './testing/fixtures/reference64.js';

const { available, skipped } = await availableBackends();
const cpu = new CpuBackend();

describe('conformance backends', () => {
  it('has at least one backend to run on', () => {
    expect(available.length).toBeGreaterThan(0);
  });
  for (const s of skipped) it.skip(`${s.name}: ${s.reason}`, () => undefined);
});

const UNARY_OPS: readonly UnaryOp[] = ['silu', 'relu', 'sigmoid', 'gelu', 'gelu_tanh', 'exp', 'neg', 'abs', 'sqrt', 'rsqrt', 'square', 'tanh'];
const UNARY_FN: Readonly<Record<UnaryOp, (x: Tensor) => Promise<Tensor>>> = {
  silu: op.silu,
  relu: op.relu,
  sigmoid: op.sigmoid,
  gelu: op.gelu,
  gelu_tanh: op.geluTanh,
  exp: op.exp,
  neg: op.neg,
  abs: op.abs,
  sqrt: op.sqrt,
  rsqrt: op.rsqrt,
  square: op.square,
  tanh: op.tanh,
};
const BINARY_FN: Readonly<Record<BinaryOp, (a: Tensor, b: Tensor) => Promise<Tensor>>> = {
  add: op.add,
  sub: op.sub,
  mul: op.mul,
  div: op.div,
  max: op.maximum,
  min: op.minimum,
};

const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

describeEachBackend(available, (name) => `conformance on ${name}`, (getBackend) => {
  const rng = new SeededRandom(20_250_611);
  const normal = (shape: readonly number[], scale = 1): Float32Array => rng.normalArray(size(shape), scale);
  const on = (values: ArrayLike<number>, shape: readonly number[], options?: op.TensorOptions): Tensor => op.tensor(getBackend(), values, shape, options);
  const onCpu = (values: ArrayLike<number>, shape: readonly number[], options?: op.TensorOptions): Tensor => op.tensor(cpu, values, shape, options);

  it('matmul: shapes with odd and size-1 axes, transposes, broadcast batches', async () => {
    const cases: [number[], number[], boolean, boolean][] = [
      [[1, 1], [1, 1], false, false],
      [[3, 5], [5, 7], false, false],
      [[17, 33], [33, 2], false, false],
      [[1, 9], [9, 1], false, false],
      [[4, 6], [5, 6], false, true],
      [[6, 4], [6, 5], true, false],
      [[6, 3], [5, 6], true, true],
      [[2, 3, 5], [5, 4], false, false],
      [[2, 3, 5], [2, 5, 4], false, false],
      [[1, 3, 5], [3, 5, 2], false, false],
      [[2, 1, 3, 5], [4, 5, 3], false, false],
      [[2, 3, 1, 5], [2, 1, 4, 5], false, true],
      [[3, 0], [0, 4], false, false],
    ];
    for (const [as, bs, tA, tB] of cases) {
      const a = normal(as);
      const b = normal(bs);
      using out = await op.matmul(on(a, as), on(b, bs), { transposeA: tA, transposeB: tB });
      await expectWithin(out, ref.matmul64(a, as, b, bs, tA, tB), `matmul ${fmt(as)}${tA ? 'ᵀ' : ''} · ${fmt(bs)}${tB ? 'ᵀ' : ''}`);
    }
  });

  it('linear: f32, f16, bf16, int8 and fp8 weights, with and without bias', async () => {
    const weights: { dtype: DType; blockSize?: number; scaleFormat?: 'exact' | 'ue8m0' }[] = [
      { dtype: 'f32' },
      { dtype: 'f16' },
      { dtype: 'bf16' },
      { dtype: 'int8', blockSize: 4 },
      { dtype: 'fp8e4m3', blockSize: 12 },
      { dtype: 'fp8e4m3', blockSize: 6, scaleFormat: 'ue8m0' },
    ];
    for (const [xs, O] of [
      [[2, 3, 12], 5],
      [[1, 12], 1],
      [[7, 12], 9],
    ] as const) {
      const I = xs[xs.length - 1] ?? 1;
      for (const w of weights) {
        for (const withBias of [false, true]) {
          const x = normal(xs);
          const wv = normal([O, I], 0.5);
          const bias = normal([O]);
          using wf = on(wv, [O, I]);
          using weight = await op.cast(wf, w.dtype, { ...(w.blockSize ? { blockSize: w.blockSize } : {}), ...(w.scaleFormat ? { scaleFormat: w.scaleFormat } : {}) });
          const decoded = await weight.data();
          using biasT = withBias ? on(bias, [O]) : null;
          using out = await op.linear(on(x, xs), weight, biasT);
          expect(out.shape).toEqual([...xs.slice(0, -1), O]);
          await expectWithin(out, ref.linear64(x, I, decoded, O, withBias ? bias : null), `linear ${w.dtype}${withBias ? ' + bias' : ''} ${fmt(xs)}·[${O}, ${I}]ᵀ`);
        }
      }
    }
  });

  it('unary ops and affine', async () => {
    for (const name of UNARY_OPS) {
      for (const shape of [[5, 7], [1], [33]]) {
        let x = normal(shape, 3);
        if (name === 'sqrt' || name === 'rsqrt') x = x.map((v) => Math.abs(v) + 0.1);
        using out = await UNARY_FN[name](on(x, shape));
        await expectWithin(out, ref.unary64(name, x), `${name} ${fmt(shape)}`);
      }
    }
    const x = normal([4, 9], 10);
    using out = await op.affine(on(x, [4, 9]), -0.75, 2.5);
    await expectWithin(out, ref.unary64('affine', x, -0.75, 2.5), 'affine');
  });

  it('binary ops with broadcasting', async () => {
    const shapes: [number[], number[]][] = [
      [[3, 5], [3, 5]],
      [[3, 5], [5]],
      [[3, 5], [1]],
      [[1], [2, 3]],
      [[3, 1], [1, 5]],
      [[7, 1, 5], [7, 4, 1]],
      [[2, 1, 3, 1], [4, 1, 5]],
      [[2, 3, 4, 5], [3, 1, 5]],
      [[1, 1, 1], [1, 1, 1]],
    ];
    for (const name of ['add', 'sub', 'mul', 'div', 'max', 'min'] as const) {
      for (const [as, bs] of shapes) {
        const a = normal(as);
        const b = normal(bs).map((v) => (name === 'div' ? Math.sign(v) * (Math.abs(v) + 0.5) : v));
        using out = await BINARY_FN[name](on(a, as), on(b, bs));
        const expected = ref.binary64(a, as, b, bs, name);
        expect(out.shape).toEqual(expected.shape);
        await expectWithin(out, expected, `${name} ${fmt(as)} ∘ ${fmt(bs)}`);
      }
    }
  });

  it('softmax and logSumExp with broadcast additive masks, empty rows included', async () => {
    const masked = (shape: number[], hideProbability: number): Float32Array => {
      const m = new Float32Array(size(shape));
      for (let i = 0; i < m.length; i++) m[i] = rng.next() < hideProbability ? -Infinity : 0;
      return m;
    };
    const cases: [number[], number[] | null][] = [
      [[2, 3, 5], null],
      [[2, 3, 5], [3, 5]],
      [[2, 3, 5], [2, 1, 5]],
      [[2, 3, 5], [5]],
      [[2, 3, 5], [2, 3, 5]],
      [[2, 3, 4, 5], [2, 1, 4, 5]],
      [[4, 1], [4, 1]],
      [[1, 33], null],
      [[3, 64], [1, 64]],
    ];
    for (const [xs, ms] of cases) {
      const x = normal(xs, 4);
      const mask = ms ? masked(ms, 0.4) : null;
      // make the first row of the mask entirely −∞: its softmax is 0, its lse −∞
      if (mask && ms) mask.fill(-Infinity, 0, ms[ms.length - 1]);
      for (const scale of [1, 0.37]) {
        using m = mask && ms ? on(mask, ms) : null;
        using y = await op.softmax(on(x, xs), { scale, mask: m });
        await expectWithin(y, ref.softmax64(x, xs, scale, mask, ms), `softmax ${fmt(xs)} mask ${ms ? fmt(ms) : '-'} scale ${scale}`);
        using l = await op.logSumExp(on(x, xs), { scale, mask: m });
        await expectWithin(l, ref.logSumExp64(x, xs, scale, mask, ms), `logSumExp ${fmt(xs)} mask ${ms ? fmt(ms) : '-'} scale ${scale}`);
      }
    }
  });

  it('rmsNorm and layerNorm with f32, f16, bf16 or no parameters', async () => {
    for (const shape of [[3, 7], [2, 1, 33], [1, 1]]) {
      const D = shape[shape.length - 1] ?? 1;
      const x = normal(shape, 2);
      for (const dtype of ['f32', 'f16', 'bf16', null] as const) {
        using w = dtype ? on(normal([D]), [D], { dtype }) : null;
        using b = dtype ? on(normal([D]), [D], { dtype }) : null;
        const wv = w ? await w.data() : null;
        const bv = b ? await b.data() : null;
        using r = await op.rmsNorm(on(x, shape), w, 1e-6);
        await expectWithin(r, ref.rmsNorm64(x, D, wv, 1e-6), `rmsNorm ${fmt(shape)} weight ${dtype ?? 'none'}`);
        using l = await op.layerNorm(on(x, shape), w, b, 1e-5);
        await expectWithin(l, ref.layerNorm64(x, D, wv, bv, 1e-5), `layerNorm ${fmt(shape)} params ${dtype ?? 'none'}`);
      }
    }
  });

  it('rope: both layouts, offset slices, positions [S] and [B, S]', async () => {
    const cases: { shape: number[]; layout: RopeLayout; offset: number; width: number; perBatch: boolean }[] = [
      { shape: [2, 3, 2, 8], layout: 'interleaved', offset: 0, width: 8, perBatch: false },
      { shape: [2, 3, 2, 8], layout: 'halfsplit', offset: 0, width: 8, perBatch: true },
      { shape: [1, 5, 3, 10], layout: 'interleaved', offset: 6, width: 4, perBatch: false },
      { shape: [5, 3, 10], layout: 'halfsplit', offset: 2, width: 6, perBatch: false },
      { shape: [3, 1, 1, 2], layout: 'halfsplit', offset: 0, width: 2, perBatch: true },
    ];
    for (const c of cases) {
      const [B, S, H, D] = c.shape.length === 4 ? (c.shape as [number, number, number, number]) : [1, ...(c.shape as [number, number, number])];
      const x = normal(c.shape);
      const positions = Int32Array.from({ length: c.perBatch ? B * S : S }, () => rng.int(0, 600));
      const inv = ropeInvFreq({ dim: c.width, theta: 10000 });
      using y = await op.rope(on(x, c.shape), on(positions, c.perBatch ? [B, S] : [S], { dtype: 'i32' }), on(inv, [c.width / 2]), {
        layout: c.layout,
        offset: c.offset,
        width: c.width,
      });
      const at = (b: number, s: number): number => positions[c.perBatch ? b * S + s : s] as number;
      await expectWithin(y, ref.rope64(x, B, S, H, D, at, inv, c.layout, c.offset, c.width), `rope ${c.layout} ${fmt(c.shape)} offset ${c.offset} width ${c.width}`);
    }
  });

  it('reductions along every axis', async () => {
    const shape = [3, 4, 5];
    const x = normal(shape);
    for (let axis = 0; axis < 3; axis++) {
      const outer = size(shape.slice(0, axis));
      const inner = size(shape.slice(axis + 1));
      const N = shape[axis] ?? 1;
      for (const keepDims of [false, true]) {
        using s = await op.sum(on(x, shape), axis, keepDims);
        await expectWithin(s, ref.sum64(x, outer, N, inner, false), `sum axis ${axis}`);
        using m = await op.mean(on(x, shape), axis, keepDims);
        await expectWithin(m, ref.sum64(x, outer, N, inner, true), `mean axis ${axis}`);
        for (const name of ['max', 'min'] as const) {
          using got = await op[name](on(x, shape), axis, keepDims);
          using want = await op[name](onCpu(x, shape), axis, keepDims);
          expect(got.shape).toEqual(want.shape);
          expectSame(await got.data(), await want.data(), `${name} axis ${axis}`);
        }
      }
    }
  });

  it('layout: concat (one to six inputs), slice, transpose, for f32, f16 and i32', async () => {
    for (const [shapes, axis] of [
      [[[2, 3, 4], [2, 1, 4]], 1],
      [[[1, 2], [3, 2], [1, 2], [2, 2], [1, 2], [4, 2]], 0],
      [[[3, 1], [3, 5], [3, 2]], -1],
      [[[5]], 0],
    ] as [number[][], number][]) {
      for (const dtype of ['f32', 'i32'] as const) {
        const values = shapes.map((s) => (dtype === 'i32' ? Int32Array.from({ length: size(s) }, () => rng.int(-1000, 1000)) : normal(s)));
        using got = await op.concat(values.map((v, i) => on(v, shapes[i] ?? [], { dtype })), axis);
        using want = await op.concat(values.map((v, i) => onCpu(v, shapes[i] ?? [], { dtype })), axis);
        expect(got.shape).toEqual(want.shape);
        expect(got.dtype).toBe(dtype);
        expectSame(await got.data(), await want.data(), `concat ${dtype} axis ${axis}`);
      }
    }
    const shape = [3, 4, 5];
    for (const dtype of ['f32', 'f16', 'i32'] as const) {
      const x = dtype === 'i32' ? Int32Array.from({ length: 60 }, (_, i) => i - 30) : normal(shape);
      for (const [begin, sz] of [
        [[0, 0, 0], [3, 4, 5]],
        [[1, 2, 3], [2, 1, 2]],
        [[2, 0, 4], [1, 4, 1]],
        [[0, 3, 0], [3, -1, -1]],
        [[1, 1, 1], [0, 2, 2]],
      ] as [number[], number[]][]) {
        using got = await op.slice(on(x, shape, { dtype }), begin, sz);
        using want = await op.slice(onCpu(x, shape, { dtype }), begin, sz);
        expect(got.shape).toEqual(want.shape);
        expectSame(await got.data(), await want.data(), `slice ${dtype} ${fmt(begin)} ${fmt(sz)}`);
      }
      for (const perm of [
        [0, 1, 2],
        [2, 0, 1],
        [1, 0, 2],
        [2, 1, 0],
      ]) {
        using got = await op.transpose(on(x, shape, { dtype }), perm);
        using want = await op.transpose(onCpu(x, shape, { dtype }), perm);
        expect(got.shape).toEqual(want.shape);
        expect(got.dtype).toBe(dtype);
        expectSame(await got.data(), await want.data(), `transpose ${dtype} ${fmt(perm)}`);
      }
    }
    const x4 = normal([2, 3, 4, 5]);
    using t4 = await op.transpose(on(x4, [2, 3, 4, 5]), [3, 1, 0, 2]);
    using w4 = await op.transpose(onCpu(x4, [2, 3, 4, 5]), [3, 1, 0, 2]);
    expectSame(await t4.data(), await w4.data(), 'transpose rank 4');
  });

  it('gather with batch dims, from f32, f16, int8 and fp8 storage, along any axis', async () => {
    const cases: { shape: number[]; idx: number[]; batchDims: number }[] = [
      { shape: [6, 5], idx: [4], batchDims: 0 },
      { shape: [6, 5], idx: [2, 3], batchDims: 0 },
      { shape: [2, 6, 4], idx: [2, 3], batchDims: 1 },
      { shape: [2, 3, 4], idx: [2, 3, 2], batchDims: 2 },
      { shape: [1, 1], idx: [1], batchDims: 0 },
    ];
    for (const c of cases) {
      const N = c.shape[c.batchDims] ?? 1;
      const indices = Int32Array.from({ length: size(c.idx) }, () => rng.int(0, N - 1));
      const last = c.shape[c.shape.length - 1] ?? 1;
      for (const dtype of ['f32', 'f16', 'int8', 'fp8e4m3'] as const) {
        using xf = on(normal(c.shape), c.shape);
        using x = await op.cast(xf, dtype, { blockSize: last % 2 === 0 ? 2 : last });
        const decoded = await x.data();
        using got = await op.gather(x, on(indices, c.idx, { dtype: 'i32' }), { batchDims: c.batchDims });
        using want = await op.gather(onCpu(decoded, c.shape), onCpu(indices, c.idx, { dtype: 'i32' }), { batchDims: c.batchDims });
        expect(got.shape).toEqual(want.shape);
        expectSame(await got.data(), await want.data(), `gather ${dtype} ${fmt(c.shape)} batchDims ${c.batchDims}`);
      }
    }
  });

  it('writeSlice and scatterRows convert into the destination storage in place', async () => {
    for (const dtype of ['f32', 'f16', 'bf16', 'int8', 'fp8e4m3'] as const) {
      const quantized = dtype === 'int8' || dtype === 'fp8e4m3';
      for (const [axis, start, n] of [
        [1, 2, 3],
        [0, 1, 1],
        [2, 2, 2],
      ] as const) {
        const shape = [2, 6, 4];
        const srcShape = shape.map((d, i) => (i === axis ? n : d));
        const src = normal(srcShape);
        const dst = on(new Float32Array(48), shape);
        const dstCpu = onCpu(new Float32Array(48), shape);
        using d = await op.cast(dst, dtype, { blockSize: 2 });
        using dc = await op.cast(dstCpu, dtype, { blockSize: 2 });
        dst.dispose();
        dstCpu.dispose();
        const returned = await op.writeSlice(d, on(src, srcShape), axis, start);
        expect(returned).toBe(d);
        await op.writeSlice(dc, onCpu(src, srcShape), axis, start);
        // quantised scales may differ from the host's in the last ulp (f32 division on a GPU)
        if (quantized) expectRelative(await d.data(), await dc.data(), 2 * ref.U, `writeSlice into ${dtype} axis ${axis}`);
        else expectSame(await d.data(), await dc.data(), `writeSlice into ${dtype} axis ${axis}`);
      }
      const rows = Int32Array.from([5, 0, 7]);
      const src = normal([3, 3, 4]);
      using d = await op.cast(on(new Float32Array(96), [8, 3, 4]), dtype, { blockSize: 4 });
      using dc = await op.cast(onCpu(new Float32Array(96), [8, 3, 4]), dtype, { blockSize: 4 });
      await op.scatterRows(d, on(src, [3, 3, 4]), on(rows, [3], { dtype: 'i32' }));
      await op.scatterRows(dc, onCpu(src, [3, 3, 4]), onCpu(rows, [3], { dtype: 'i32' }));
      if (quantized) expectRelative(await d.data(), await dc.data(), 2 * ref.U, `scatterRows into ${dtype}`);
      else expectSame(await d.data(), await dc.data(), `scatterRows into ${dtype}`);
    }
  });

  it('writeSlice of odd-length runs into byte-pair storage keeps the neighbouring codes', async () => {
    // rows of 3 int8 values: runs start at odd elements and share words with untouched rows
    const shape = [5, 3];
    const base = normal(shape);
    const src = normal([2, 3]);
    using d = await op.cast(on(base, shape), 'int8', { blockSize: 3 });
    using dc = await op.cast(onCpu(base, shape), 'int8', { blockSize: 3 });
    await op.writeSlice(d, on(src, [2, 3]), 0, 1);
    await op.writeSlice(dc, onCpu(src, [2, 3]), 0, 1);
    expectRelative(await d.data(), await dc.data(), 2 * ref.U, 'odd runs');
    using s = await op.scatterRows(d, on(src, [2, 3]), on([4, 2], [2], { dtype: 'i32' }));
    await op.scatterRows(dc, onCpu(src, [2, 3]), onCpu([4, 2], [2], { dtype: 'i32' }));
    expectRelative(await s.data(), await dc.data(), 2 * ref.U, 'odd scattered rows');
  });

  it('topK: descending, ties to the lower index, NaN ranked as −∞', async () => {
    const specials = await op.topK(onCpu([Number.NaN, -Infinity, 1, Number.NaN, 2], [5]), 5);
    expect(Array.from(await specials.indices.dataInt()), 'the reference order: numbers, then −∞ and NaN by index').toEqual([4, 2, 0, 1, 3]);
    specials.values.dispose();
    specials.indices.dispose();
    const rows = [3, 1, 3, 2, NaN, 5, 5, 0, -1, 7, 1, 1, -Infinity, 2, 2, 2, NaN, 0];
    for (const [values, shape] of [
      [rows, [3, 6]],
      [[4], [1, 1]],
      [Array.from(normal([2, 17])), [2, 17]],
    ] as [number[], number[]][]) {
      const N = shape[shape.length - 1] ?? 1;
      for (const k of new Set([1, Math.min(4, N), N])) {
        const got = await op.topK(on(values, shape), k);
        const want = await op.topK(onCpu(values, shape), k);
        expectSame(await got.values.data(), await want.values.data(), `topK values k ${k} ${fmt(shape)}`);
        expect(got.indices.dtype).toBe('i32');
        expectSame(await got.indices.dataInt(), await want.indices.dataInt(), `topK indices k ${k} ${fmt(shape)}`);
        got.values.dispose();
        got.indices.dispose();
      }
    }
  });

  it('cast to f16 and bf16 rounds to nearest even, like the host encoders', async () => {
    const specials = [0, -0, 1, -1, 0.1, 1 / 3, 65504, 65519, 65520, 1e5, -1e5, 6.1e-5, 5.96e-8, 2.98e-8, 1e-8, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.3e38, -3.4e38, 1e-30, Infinity, -Infinity, NaN];
    const x = Float32Array.from([...specials, ...normal([40], 100)]);
    using f16 = await op.cast(on(x, [x.length]), 'f16');
    expectSame(await f16.data(), decodeF16(encodeF16(x)), 'f32 → f16');
    using bf16 = await op.cast(on(x, [x.length]), 'bf16');
    expectSame(await bf16.data(), decodeBf16(encodeBf16(x)), 'f32 → bf16');
    using back = await op.cast(f16, 'f32');
    expect(back.dtype).toBe('f32');
    expectSame(await back.data(), decodeF16(encodeF16(x)), 'f16 → f32');
    using across = await op.cast(bf16, 'f16');
    expectSame(await across.data(), decodeF16(encodeF16(decodeBf16(encodeBf16(x)))), 'bf16 → f16');
  });

  it('block quantisation to int8 and fp8 matches the host and stays within half a step', async () => {
    for (const dtype of ['int8', 'fp8e4m3'] as const) {
      for (const scaleFormat of dtype === 'int8' ? (['exact'] as const) : (['exact', 'ue8m0'] as const)) {
        for (const [shape, blockSize] of [
          [[4, 32], 8],
          [[3, 5], 5],
          [[2, 6], 1],
        ] as [number[], number][]) {
          const x = normal(shape, 3);
          x[0] = 0;
          using q = await op.cast(on(x, shape), dtype, { blockSize, scaleFormat });
          using qc = await op.cast(onCpu(x, shape), dtype, { blockSize, scaleFormat });
          expect(q.blockSize).toBe(blockSize);
          const got = await q.data();
          expectRelative(got, await qc.data(), 2 * ref.U, `${dtype} ${scaleFormat} block ${blockSize}`);
          // the quantisation error bound of the format, from each block's scale
          for (let b = 0; b < x.length / blockSize; b++) {
            let amax = 0;
            for (let i = b * blockSize; i < (b + 1) * blockSize; i++) amax = Math.max(amax, Math.abs(x[i] as number));
            for (let i = b * blockSize; i < (b + 1) * blockSize; i++) {
              const e = Math.abs((got[i] as number) - (x[i] as number));
              // int8: half of the step amax/127; fp8: half an ulp of the 3-bit mantissa, or half
              // the subnormal step 2^-9 of the scale (at most twice amax/448 with ue8m0 scales)
              const scale = Math.max(amax, 1e-4) / 448;
              const bound = dtype === 'int8' ? amax / 127 / 2 : Math.max(Math.abs(x[i] as number) / 16, (scaleFormat === 'ue8m0' ? 2 * scale : scale) * 2 ** -10);
              expect(e, `${dtype} element ${i}: ${got[i]} for ${x[i]}`).toBeLessThanOrEqual(bound * (1 + 4 * ref.U) + 1e-30);
            }
          }
          using dq = await op.dequantize(q);
          expectSame(await dq.data(), got, `${dtype} dequantize`);
        }
      }
    }
  });

  it('random shapes (odd sizes, size-1 axes) for the numeric primitives', async () => {
    const dim = (): number => rng.pick([1, 1, 2, 3, 5, 7, 8, 13, 16, 31]);
    for (let trial = 0; trial < 6; trial++) {
      const [M, K, N, B] = [dim(), dim(), dim(), dim()];
      const tA = rng.next() < 0.5;
      const tB = rng.next() < 0.5;
      const as = tA ? [B, K, M] : [B, M, K];
      const bs = tB ? [N, K] : [K, N];
      const a = normal(as);
      const b = normal(bs);
      using mm = await op.matmul(on(a, as), on(b, bs), { transposeA: tA, transposeB: tB });
      await expectWithin(mm, ref.matmul64(a, as, b, bs, tA, tB), `random matmul ${fmt(as)}${tA ? 'ᵀ' : ''} · ${fmt(bs)}${tB ? 'ᵀ' : ''}`);

      const xs = [B, M, K];
      const x = normal(xs, 2);
      const w = normal([N, K]);
      using lin = await op.linear(on(x, xs), on(w, [N, K]));
      await expectWithin(lin, ref.linear64(x, K, w, N, null), `random linear ${fmt(xs)}`);
      const ms = [1, M, K];
      const mask = normal(ms).map((v) => (v > 1 ? -Infinity : 0));
      using sm = await op.softmax(on(x, xs), { scale: 0.5, mask: on(mask, ms) });
      await expectWithin(sm, ref.softmax64(x, xs, 0.5, mask, ms), `random softmax ${fmt(xs)}`);
      using rms = await op.rmsNorm(on(x, xs), null, 1e-6);
      await expectWithin(rms, ref.rmsNorm64(x, K, null, 1e-6), `random rmsNorm ${fmt(xs)}`);
      const ys = [M, 1];
      const y = normal(ys);
      using sum = await op.add(on(x, xs), on(y, ys));
      await expectWithin(sum, ref.binary64(x, xs, y, ys, 'add'), `random add ${fmt(xs)} + ${fmt(ys)}`);
      const axis = rng.int(0, 2);
      using red = await op.sum(on(x, xs), axis);
      await expectWithin(red, ref.sum64(x, size(xs.slice(0, axis)), xs[axis] ?? 1, size(xs.slice(axis + 1)), false), `random sum axis ${axis} of ${fmt(xs)}`);
    }
  });

  it('reshape views share storage and count as tensors, not buffers', async () => {
    const backend = getBackend();
    const before = backend.memory();
    const x = on(normal([4, 6]), [4, 6]);
    const v = op.reshape(x, [2, -1, 3]);
    expect(v.shape).toEqual([2, 4, 3]);
    expectSame(await v.data(), await x.data(), 'view values');
    const mid = backend.memory();
    expect(mid.liveTensors - before.liveTensors).toBe(2);
    expect(mid.liveBuffers - before.liveBuffers).toBe(1);
    x.dispose();
    expectSame(await v.data(), await v.data(), 'view outlives its source handle');
    v.dispose();
    expect(backend.memory()).toEqual(before);
  });

  it('a long loop of ops with disposal leaks no buffer and no tensor', async () => {
    const backend = getBackend();
    const before = backend.memory();
    const zero = op.zeros(backend, [2, 16, 8]);
    const cache = await op.cast(zero, 'int8', { blockSize: 8 });
    zero.dispose();
    for (let step = 0; step < 40; step++) {
      using q = on(normal([2, 1, 8]), [2, 1, 8]);
      using w = on(normal([8, 8]), [8, 8]);
      using y = await op.linear(q, w);
      using s = await op.softmax(y, { scale: 0.5 });
      using r = op.reshape(s, [2, 8]);
      using h = await op.cast(r, 'f16');
      using t = await op.transpose(h, [1, 0]);
      using c = await op.concat([r, r], 0);
      const top = await op.topK(c, 3);
      top.values.dispose();
      top.indices.dispose();
      using rows = on([step % 16, 0], [2], { dtype: 'i32' });
      using gathered = await op.gather(cache, rows, { batchDims: 0 });
      expect(gathered.shape).toEqual([2, 16, 8]);
      await op.writeSlice(cache, y, 1, step % 16);
      expect(t.shape).toEqual([8, 2]);
    }
    cache.dispose();
    expect(backend.memory()).toEqual(before);
  });
});
