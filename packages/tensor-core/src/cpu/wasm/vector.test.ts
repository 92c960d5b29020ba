// The vector building blocks against plain JavaScript: e^x and 2^x within their documented accuracy over
// the whole range the attention kernels use (softmax arguments are ≤ 0), its special values,
// and the horizontal reductions.
import { describe, expect, it } from 'vitest';
import { FunctionBuilder, assembleModule, f32, forRange, get, i32, set, v128 } from './emit.js';
import { WasmHeap, exported } from './heap.js';
import { EXP2_UNDERFLOW, EXP_UNDERFLOW, horizontalMax, horizontalSum, reduce4, vectorExp, vectorExp2 } from './vector.js';

type Unary = (src: number, dst: number, count: number) => void;

/** dst[i] = e^src[i] for i < count (a multiple of 4), over the heap. */
async function lanewise(heap: WasmHeap, fma: boolean, nonPositive = false): Promise<Unary> {
  const f = new FunctionBuilder('exp4');
  const src = f.param('i32');
  const dst = f.param('i32');
  const count = f.param('i32');
  const at = f.local('i32');
  const exp = vectorExp(f, { fma, nonPositive });
  f.body(forRange(at, i32.const(0), i32.mul(get(count), i32.const(4)), 16, v128.store(i32.add(get(dst), get(at)), exp(v128.load(i32.add(get(src), get(at)))))));
  return exported<Unary>(await heap.instance(`test/exp4/${fma}/${nonPositive}`, (memory) => assembleModule(memory, [f])), 'exp4');
}

/** dst[i] = 2^src[i] for i < count (a multiple of 4), over the heap. */
async function lanewise2(heap: WasmHeap, fma: boolean): Promise<Unary> {
  const f = new FunctionBuilder('exp2x4');
  const src = f.param('i32');
  const dst = f.param('i32');
  const count = f.param('i32');
  const at = f.local('i32');
  const exp2 = vectorExp2(f, { fma });
  f.body(forRange(at, i32.const(0), i32.mul(get(count), i32.const(4)), 16, v128.store(i32.add(get(dst), get(at)), exp2(v128.load(i32.add(get(src), get(at)))))));
  return exported<Unary>(await heap.instance(`test/exp2x4/${fma}`, (memory) => assembleModule(memory, [f])), 'exp2x4');
}

/** Distance in units in the last place of f32 between a (f32) and the exact e (f64). */
function ulps(a: number, e: number): number {
  const spacing = 2 ** (Math.floor(Math.log2(Math.abs(e))) - 23);
  return Math.abs(a - e) / spacing;
}

// package.json runs these tests with --experimental-wasm-relaxed-simd (Node 20): both forms run
describe.each([{ fma: true }, { fma: false }])('vectorExp (fma: $fma)', ({ fma }) => {
  it('runs where the engine validates it', () => {
    expect(new WasmHeap().relaxedSimd || !fma).toBe(true);
  });

  it('is within 2 ulp of e^x for x in [−87.3, 88.3]', async () => {
    const heap = new WasmHeap();
    const run = await lanewise(heap, fma);
    const n = 200_000;
    const region = heap.alloc(8 * n, 'test');
    const xs = new Float32Array(n);
    for (let i = 0; i < n; i++) xs[i] = EXP_UNDERFLOW + 0.01 + ((88.3 - EXP_UNDERFLOW - 0.01) * i) / (n - 1);
    heap.f32.set(xs, region.index);
    run(region.byteOffset, region.byteOffset + 4 * n, n);
    const ys = heap.f32.subarray(region.index + n, region.index + 2 * n);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, ulps(ys[i] as number, Math.exp(xs[i] as number)));
    expect(worst).toBeLessThanOrEqual(2);
    region.release();
  });

  it('gives exactly 1 at 0, 0 below the underflow bound and at −∞, NaN for NaN', async () => {
    const heap = new WasmHeap();
    const run = await lanewise(heap, fma);
    const region = heap.alloc(64, 'test');
    heap.f32.set([0, -88, -Infinity, Number.NaN, -1e30, -87.3, 1, -0], region.index);
    run(region.byteOffset, region.byteOffset + 32, 8);
    const ys = [...heap.f32.subarray(region.index + 8, region.index + 16)];
    expect(ys[0]).toBe(1);
    expect(ys.slice(1, 3)).toEqual([0, 0]);
    expect(Number.isNaN(ys[3])).toBe(true);
    expect(ys[4]).toBe(0);
    expect(ulps(ys[5] as number, Math.exp(Math.fround(-87.3)))).toBeLessThanOrEqual(2);
    expect(ulps(ys[6] as number, Math.E)).toBeLessThanOrEqual(2);
    expect(ys[7]).toBe(1);
  });

  it('nonPositive: within 2 ulp for x in [−87.3, 0], ~2^−126 below (−∞ included), NaN for NaN', async () => {
    const heap = new WasmHeap();
    const run = await lanewise(heap, fma, true);
    const n = 100_000;
    const region = heap.alloc(8 * n + 64, 'test');
    const xs = new Float32Array(n);
    for (let i = 0; i < n; i++) xs[i] = ((EXP_UNDERFLOW + 0.01) * i) / (n - 1);
    heap.f32.set(xs, region.index);
    run(region.byteOffset, region.byteOffset + 4 * n, n);
    const ys = heap.f32.subarray(region.index + n, region.index + 2 * n);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, ulps(ys[i] as number, Math.exp(xs[i] as number)));
    expect(worst).toBeLessThanOrEqual(2);
    const specials = region.index + 2 * n;
    heap.f32.set([0, -88, -Infinity, Number.NaN, -1e30, -0, -87.3, -1], specials);
    run(4 * specials, 4 * specials + 32, 8);
    const got = [...heap.f32.subarray(specials + 8, specials + 16)];
    expect(got[0]).toBe(1);
    for (const tiny of [got[1], got[2], got[4]]) expect(tiny).toBeLessThan(2 ** -125);
    expect(Number.isNaN(got[3])).toBe(true);
    expect(got[5]).toBe(1);
    region.release();
  });
});

describe.each([{ fma: true }, { fma: false }])('vectorExp2 (fma: $fma)', ({ fma }) => {
  it('is within 2 ulp of 2^x for x in [−126, 0], 2^−126 below (−∞ included), NaN for NaN', async () => {
    const heap = new WasmHeap();
    const run = await lanewise2(heap, fma);
    const n = 200_000;
    const region = heap.alloc(8 * n + 64, 'test');
    const xs = new Float32Array(n);
    // the grid, and integers and half-integers (the ends of the reduced range) exactly
    for (let i = 0; i < n; i++) xs[i] = i <= 252 ? -i / 2 : (EXP2_UNDERFLOW * (i - 253)) / (n - 254);
    heap.f32.set(xs, region.index);
    run(region.byteOffset, region.byteOffset + 4 * n, n);
    const ys = heap.f32.subarray(region.index + n, region.index + 2 * n);
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, ulps(ys[i] as number, 2 ** (xs[i] as number)));
    expect(worst).toBeLessThanOrEqual(2);
    const specials = region.index + 2 * n;
    heap.f32.set([0, -127, -Infinity, Number.NaN, -1e30, -0, -1, -126], specials);
    run(4 * specials, 4 * specials + 32, 8);
    const got = [...heap.f32.subarray(specials + 8, specials + 16)];
    expect(got[0]).toBe(1);
    for (const tiny of [got[1], got[2], got[4]]) expect(tiny).toBe(2 ** -126);
    expect(Number.isNaN(got[3])).toBe(true);
    expect(got[5]).toBe(1);
    expect(got[6]).toBe(0.5);
    expect(got[7]).toBe(2 ** -126);
    region.release();
  });
});

describe('horizontal reductions', () => {
  it('max, sum and reduce4 match scalar loops', async () => {
    const heap = new WasmHeap();
    const f = new FunctionBuilder('reduce');
    const p = f.param('i32');
    const vs = [f.local('v128'), f.local('v128'), f.local('v128'), f.local('v128')] as const;
    const t1 = f.local('v128');
    const t2 = f.local('v128');
    f.body(
      ...vs.map((v, i) => set(v, v128.load(get(p), 16 * i))),
      v128.store(get(p), reduce4(vs[0], vs[1], vs[2], vs[3], t1, t2), 64),
      // max and sum of the first vector into the next two slots
      f32.store(get(p), horizontalMax(get(vs[0]), t1), 80),
      f32.store(get(p), horizontalSum(get(vs[0]), t1), 84),
    );
    const run = exported<(p: number) => void>(await heap.instance('test/reduce', (memory) => assembleModule(memory, [f])), 'reduce');
    const region = heap.alloc(128, 'test');
    const values = Array.from({ length: 16 }, (_, i) => ((i * 7) % 11) - 5 + i / 16);
    heap.f32.set(values, region.index);
    run(region.byteOffset);
    const got = [...heap.f32.subarray(region.index + 16, region.index + 22)];
    const sums = [0, 1, 2, 3].map((v) => values.slice(4 * v, 4 * v + 4).reduce((s, x) => s + x, 0));
    got.slice(0, 4).forEach((g, i) => expect(g).toBeCloseTo(sums[i] as number, 5));
    expect(got[4]).toBe(Math.fround(Math.max(...values.slice(0, 4))));
    expect(got[5]).toBeCloseTo(sums[0] as number, 5);
  });
});
