// The tile decoders against tensor-core's decodeRange, bit for bit, on every storage dtype:
// every f16 and bf16 code (normals, subnormals, ±0, ±∞, NaN), every int8/fp8 code with
// per-block scales, rows that start mid-block.
import { type CpuStorage, decodeRange } from '@attnkit/tensor-core';
import { describe, expect, it } from 'vitest';
import { KvTileRows } from './kv-rows.js';

function decodeBoth(storage: CpuStorage, width: number, element: number): { got: Float32Array; want: Float32Array } {
  const rows = new KvTileRows(storage, width, 4);
  rows.load(2, element);
  const at = rows.offsets[2] as number;
  const got = rows.data.slice(at, at + width);
  const want = new Float32Array(width);
  decodeRange(storage, element, width, want);
  return { got, want };
}

const sameBits = (a: Float32Array, b: Float32Array): void => {
  expect(Array.from(new Uint32Array(a.buffer))).toEqual(Array.from(new Uint32Array(b.buffer)));
};

describe('KvTileRows decodes like decodeRange', () => {
  it('every f16 and bf16 code', () => {
    const codes = Uint16Array.from({ length: 65536 }, (_, i) => i);
    for (const dtype of ['f16', 'bf16'] as const) {
      for (let start = 0; start < 65536; start += 4096) {
        const { got, want } = decodeBoth({ dtype, data: codes }, 4096, start);
        const nan = (x: number): boolean => Number.isNaN(x);
        expect(Array.from(got).map(nan)).toEqual(Array.from(want).map(nan));
        sameBits(got.map((x) => (Number.isNaN(x) ? 0 : x)), want.map((x) => (Number.isNaN(x) ? 0 : x)));
      }
    }
  });
  it('every int8 and fp8 code with block scales, from a row that starts mid-block', () => {
    const n = 256 * 3;
    const scales = Float32Array.from({ length: n / 16 }, (_, i) => 0.5 + i * 0.25);
    const int8: CpuStorage = { dtype: 'int8', data: Int8Array.from({ length: n }, (_, i) => (i % 256) - 128), scales, blockSize: 16 };
    const fp8: CpuStorage = { dtype: 'fp8e4m3', data: Uint8Array.from({ length: n }, (_, i) => i % 256), scales, blockSize: 16 };
    for (const s of [int8, fp8]) {
      for (const [element, width] of [[0, n], [5, 40], [16, 16], [700, 68]] as const) {
        const { got, want } = decodeBoth(s, width, element);
        expect(Array.from(got)).toEqual(Array.from(want));
      }
    }
  });
  it('reads f32 rows in place', () => {
    const data = Float32Array.from({ length: 32 }, (_, i) => i);
    const rows = new KvTileRows({ dtype: 'f32', data }, 8, 4);
    rows.load(1, 16);
    expect(rows.data).toBe(data);
    expect(rows.offsets[1]).toBe(16);
  });
});
