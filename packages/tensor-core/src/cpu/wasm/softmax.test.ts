// The SIMD softmax against the float64 reference (tolerances from f32 arithmetic): row lengths
// around whole vectors, masks that vary along the row, per row only, or broadcast over rows,
// rows with nothing visible, NaN and ±∞ hidden and visible; directly on a heap with one and two
// threads, and through the CPU backend's Softmax (which takes it from 4096 elements on).
import { SeededRandom } from '@attnkit/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { expectWithin } from '../../testing/fixtures/check.js';
import * as ref from '../../testing/fixtures/reference64.js';
import * as op from '../../ops/index.js';
import { softmaxRows } from '../../reference/softmax.js';
import { CpuBackend } from '../backend.js';
import { WasmHeap } from './heap.js';
import { WASM_SOFTMAX_MIN_ELEMENTS, wasmSoftmax } from './softmax.js';
import { WasmThreadPool } from './threads.js';

const rng = new SeededRandom(33);
const size = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Row r's mask offset for a mask of `maskShape` broadcast against rows of `shape` (stride 0 or 1). */
function maskAddressing(shape: readonly number[], maskShape: readonly number[]): { offset: (row: number) => number; stride: 0 | 1 } {
  const rank = shape.length;
  const padded = [...new Array<number>(rank - maskShape.length).fill(1), ...maskShape];
  const strides = padded.map((_, d) => (padded[d] === 1 ? 0 : size(padded.slice(d + 1))));
  const rowShape = shape.slice(0, -1);
  return {
    stride: strides[rank - 1] === 0 ? 0 : 1,
    offset: (row) => {
      let off = 0;
      let rem = row;
      for (let d = rowShape.length - 1; d >= 0; d--) {
        const c = rem % (rowShape[d] as number);
        rem = Math.floor(rem / (rowShape[d] as number));
        off += c * (strides[d] as number);
      }
      return off;
    },
  };
}

describe('wasm SIMD softmax', () => {
  const heap = new WasmHeap({ shared: true });
  const plainHeap = new WasmHeap({ relaxedSimd: false });
  const pool = new WasmThreadPool(heap, 2);
  afterAll(() => {
    pool.terminate();
  });

  const cases: [number[], number[] | null][] = [
    [[7, 1], null],
    [[5, 3], [5, 3]],
    [[3, 4], [4]],
    [[6, 5], [6, 1]],
    [[2, 3, 129], [2, 1, 129]],
    [[16, 4095], null],
    [[16, 4095], [1, 4095]],
    [[600, 520], [600, 520]], // two threads: 312 000 elements
  ];
  for (const [xs, ms] of cases) {
    for (const [name, h, threads] of [
      ['FMA, pool', heap, pool],
      ['mul + add, one thread', plainHeap, null],
    ] as const) {
      it(`${xs.join('×')}${ms ? ` mask ${ms.join('×')}` : ''} (${name})`, async () => {
        const x = rng.normalArray(size(xs), 4);
        const mask = ms ? Float32Array.from({ length: size(ms) }, () => (rng.next() < 0.4 ? -Infinity : 0)) : null;
        if (mask && ms) mask.fill(-Infinity, 0, ms[ms.length - 1]); // a row (or value) hiding everything
        const N = xs[xs.length - 1] as number;
        const addressing = ms ? maskAddressing(xs, ms) : { offset: () => -1, stride: 1 as const };
        const before = h.liveBytes();
        for (const scale of [1, 0.37]) {
          const out = new Float32Array(x.length).fill(Number.NaN);
          await wasmSoftmax(h, threads, { x, N, scale, mask, maskRowOffset: addressing.offset, maskStride: addressing.stride }, out);
          const expected = ref.softmax64(x, xs, scale, mask, ms);
          const i = ref.firstMismatch(out, expected);
          expect(i, i < 0 ? '' : `element ${i}: ${out[i]} vs ${expected.values[i]}`).toBe(-1);
          // the same as the TypeScript reference, special values and zeros included
          const plain = new Float32Array(x.length);
          softmaxRows(x, N, scale, mask, addressing.offset, addressing.stride, plain);
          expect(ref.firstMismatch(plain, expected)).toBe(-1);
        }
        expect(h.liveBytes(), 'every region released').toBe(before);
      });
    }
  }

  it('follows the reference on NaN and ±∞, hidden and visible', async () => {
    const N = 9;
    const rows: [number[], number[]][] = [
      // [x row, mask row]
      [[1, 2, Number.NaN, 3, 4, 5, 6, 7, 8], [0, 0, -Infinity, 0, 0, 0, 0, 0, 0]], // hidden NaN: no effect
      [[1, 2, Number.NaN, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0, 0, 0, 0]], // visible NaN: NaN row, hidden zeros
      [[1, Number.POSITIVE_INFINITY, 3, 4, 5, 6, 7, 8, 9], [0, 0, 0, -Infinity, 0, 0, 0, 0, 0]], // visible +∞: NaN, hidden 0
      [[1, 2, 3, 4, 5, 6, 7, 8, Number.POSITIVE_INFINITY], [0, 0, 0, 0, 0, 0, 0, 0, -Infinity]], // hidden +∞ in the tail vector
      [[Number.NEGATIVE_INFINITY, 2, 3, 4, 5, 6, 7, 8, 9], [0, 0, 0, 0, 0, 0, 0, 0, 0]], // visible −∞: 0
      [[Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, 0, 0, 0, 0, 0, 0], [0, 0, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity]], // only −∞ visible: zeros
      [[1, 2, 3, 4, 5, 6, 7, 8, 9], [0, 0, 0, 0, 0, 0, 0, 0, Number.NaN]], // a NaN mask entry: NaN row
    ];
    const x = Float32Array.from(rows.flatMap(([r]) => r));
    const mask = Float32Array.from(rows.flatMap(([, m]) => m));
    for (const h of [heap, plainHeap]) {
      const out = new Float32Array(x.length);
      await wasmSoftmax(h, null, { x, N, scale: 0.5, mask, maskRowOffset: (r) => r * N, maskStride: 1 }, out);
      const want = new Float32Array(x.length);
      softmaxRows(x, N, 0.5, mask, (r) => r * N, 1, want);
      for (let i = 0; i < x.length; i++) {
        const [a, b] = [out[i] as number, want[i] as number];
        if (Number.isNaN(b) || b === 0) expect(Object.is(a, b) || (a === 0 && b === 0), `element ${i}: ${a} vs ${b}`).toBe(true);
        else expect(Math.abs(a - b), `element ${i}`).toBeLessThanOrEqual(4e-7 * b);
      }
    }
  });

  it('CpuBackend Softmax takes it from 4096 elements, matching the float64 reference', async () => {
    const backend = new CpuBackend({ threads: 2 });
    try {
      for (const xs of [
        [4, WASM_SOFTMAX_MIN_ELEMENTS / 4 + 3],
        [2, 16, 300],
        [301, 1001], // ≥ 1 MiB: a resident result written in place by both threads, rows of 1001
      ]) {
        const x = rng.normalArray(size(xs), 3);
        const ms = [xs[xs.length - 1] as number];
        const mask = Float32Array.from({ length: size(ms) }, (_, i) => (i % 7 === 3 ? -Infinity : 0.25));
        using y = await op.softmax(op.tensor(backend, x, xs), { scale: 0.8, mask: op.tensor(backend, mask, ms) });
        expect(backend.wasm?.byteOffsetOf(backend.view(y)) !== null, 'resident result').toBe(4 * size(xs) >= 2 ** 20);
        await expectWithin(y, ref.softmax64(x, xs, 0.8, mask, ms), `softmax ${xs.join('×')}`);
      }
    } finally {
      await backend.dispose();
    }
  });
});
