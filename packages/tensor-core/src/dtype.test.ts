// The host encoders every backend is checked against: f16 and bf16 round to nearest even (every
// code, every midpoint), FP8 E4M3 (all 256 codes), and int8/fp8 block quantisation.
import { SeededRandom } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import {
  FP8_E4M3_MAX,
  bf16BitsToF32,
  decodeBf16,
  dequantizeBlocks,
  encodeBf16,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  f32ToFp8E4m3,
  fp8E4m3ToF32,
  quantizeBlocks,
  storageBytes,
} from './dtype.js';

const isNaNF16 = (c: number): boolean => (c & 0x7c00) === 0x7c00 && (c & 0x3ff) !== 0;
const isNaNBf16 = (c: number): boolean => (c & 0x7f80) === 0x7f80 && (c & 0x7f) !== 0;

/** The value halfway between two adjacent codes, computed exactly in f64. */
const mid = (a: number, b: number): number => (a + b) / 2;

describe('f16', () => {
  it('decodes every code to the IEEE binary16 value and encodes it back to the same code', () => {
    const wrong: string[] = [];
    for (let c = 0; c < 0x10000; c++) {
      const v = f16BitsToF32(c);
      const exp = (c >> 10) & 0x1f;
      const man = c & 0x3ff;
      const sign = c & 0x8000 ? -1 : 1;
      const want = exp === 0 ? sign * man * 2 ** -24 : exp === 31 ? (man ? NaN : sign * Infinity) : sign * (1 + man / 1024) * 2 ** (exp - 15);
      if (isNaNF16(c)) {
        if (!Number.isNaN(v) || !isNaNF16(f32ToF16Bits(v))) wrong.push(`NaN code ${c}`);
      } else if (!Object.is(v, want) || f32ToF16Bits(v) !== c) {
        wrong.push(`code ${c}: ${v} → ${f32ToF16Bits(v)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('rounds every midpoint between adjacent finite codes to the even code, and one ulp off it to the nearer', () => {
    const wrong: string[] = [];
    for (let c = 0; c < 0x7bff; c++) {
      const m = mid(f16BitsToF32(c), f16BitsToF32(c + 1));
      const even = c % 2 === 0 ? c : c + 1;
      const above = Math.fround(m + m * 2 ** -22);
      const below = Math.fround(m - m * 2 ** -22);
      if (f32ToF16Bits(m) !== even || f32ToF16Bits(-m) !== (even | 0x8000) || f32ToF16Bits(above) !== c + 1 || f32ToF16Bits(below) !== c) {
        wrong.push(`midpoint of codes ${c} and ${c + 1}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('overflows to infinity from 65520 and keeps zeros, infinities and tiny values', () => {
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65519.99)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00);
    expect(f32ToF16Bits(-1e9)).toBe(0xfc00);
    expect(f32ToF16Bits(Infinity)).toBe(0x7c00);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // exactly half the smallest subnormal: ties to even (0)
    expect(f32ToF16Bits(Math.fround(2 ** -25 * 1.0001))).toBe(1);
  });
});

describe('bf16', () => {
  it('decodes every code to the high half of an f32 and encodes it back', () => {
    const wrong: number[] = [];
    for (let c = 0; c < 0x10000; c++) {
      const v = bf16BitsToF32(c);
      const ok = isNaNBf16(c) ? Number.isNaN(v) && isNaNBf16(f32ToBf16Bits(v)) : f32ToBf16Bits(v) === c;
      if (!ok) wrong.push(c);
    }
    expect(wrong).toEqual([]);
    expect(decodeBf16(encodeBf16([1.5, -2, 0]))).toEqual(Float32Array.from([1.5, -2, 0]));
  });

  it('rounds midpoints to even and agrees with the whole-array encoder', () => {
    const rng = new SeededRandom(7);
    const values: number[] = [];
    const wrong: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const c = rng.int(0, 0x7f7e);
      const lo = bf16BitsToF32(c);
      const hi = bf16BitsToF32(c + 1);
      const m = mid(lo, hi);
      values.push(m, -m, rng.normal() * 10 ** rng.int(-30, 30));
      if (f32ToBf16Bits(m) !== (c % 2 === 0 ? c : c + 1)) wrong.push(c);
    }
    expect(wrong).toEqual([]);
    const whole = encodeBf16(values);
    expect(values.filter((v, i) => whole[i] !== f32ToBf16Bits(v))).toEqual([]);
  });

  it('overflows to infinity past the largest finite value', () => {
    expect(bf16BitsToF32(f32ToBf16Bits(3.389e38))).toBe(bf16BitsToF32(0x7f7f));
    expect(f32ToBf16Bits(3.4028234e38)).toBe(0x7f80);
  });
});

describe('fp8 e4m3', () => {
  it('decodes all 256 codes (bias 7, subnormals, 0x7f/0xff NaN) and encodes every finite one back', () => {
    for (let c = 0; c < 256; c++) {
      const v = fp8E4m3ToF32(c);
      const e = (c >> 3) & 15;
      const m = c & 7;
      const sign = c & 0x80 ? -1 : 1;
      if (e === 15 && m === 7) {
        expect(Number.isNaN(v)).toBe(true);
        expect(f32ToFp8E4m3(v)).toBe(0x7f);
        continue;
      }
      expect(v).toBe(e === 0 ? sign * m * 2 ** -9 : sign * (1 + m / 8) * 2 ** (e - 7));
      expect(f32ToFp8E4m3(v), `code ${c}`).toBe(c);
    }
    expect(fp8E4m3ToF32(0x7e)).toBe(FP8_E4M3_MAX);
  });

  it('rounds midpoints to even, saturates at ±448 and flushes below half the smallest subnormal', () => {
    for (let c = 0; c < 0x7e; c++) {
      const m = mid(fp8E4m3ToF32(c), fp8E4m3ToF32(c + 1));
      expect(f32ToFp8E4m3(m), `midpoint of ${c}`).toBe(c % 2 === 0 ? c : c + 1);
      expect(f32ToFp8E4m3(-m)).toBe((c % 2 === 0 ? c : c + 1) | 0x80);
      expect(f32ToFp8E4m3(m * (1 + 2 ** -20))).toBe(c + 1);
      expect(f32ToFp8E4m3(m * (1 - 2 ** -20))).toBe(c);
    }
    expect(f32ToFp8E4m3(448)).toBe(0x7e);
    expect(f32ToFp8E4m3(1e6)).toBe(0x7e);
    expect(f32ToFp8E4m3(-1e6)).toBe(0xfe);
    expect(f32ToFp8E4m3(2 ** -10)).toBe(0);
    expect(f32ToFp8E4m3(2 ** -10 * 1.01)).toBe(1);
  });
});

describe('block quantisation', () => {
  const rng = new SeededRandom(11);
  const values = Float32Array.from({ length: 256 }, () => rng.normal() * 3);
  values.fill(0, 64, 96); // an all-zero block

  it('int8: scale amax/127, codes within ±127, error at most half a step', () => {
    const q = quantizeBlocks(values, 'int8', { blockSize: 32 });
    expect(q.scales.length).toBe(8);
    expect(q.scales[2]).toBe(1); // the zero block keeps a unit scale
    const back = dequantizeBlocks(q, 'int8');
    for (let b = 0; b < 8; b++) {
      let amax = 0;
      for (let i = b * 32; i < (b + 1) * 32; i++) amax = Math.max(amax, Math.abs(values[i] as number));
      if (amax > 0) expect(q.scales[b]).toBe(Math.fround(amax / 127));
      for (let i = b * 32; i < (b + 1) * 32; i++) {
        expect(Math.abs(q.codes[i] as number)).toBeLessThanOrEqual(127);
        expect(Math.abs((back[i] as number) - (values[i] as number))).toBeLessThanOrEqual(((q.scales[b] as number) / 2) * (1 + 2 ** -20));
      }
    }
  });

  it('fp8: exact and ue8m0 (power-of-two, rounded up) scales; relative error at most 2^-4', () => {
    for (const scaleFormat of ['exact', 'ue8m0'] as const) {
      const q = quantizeBlocks(values, 'fp8e4m3', { blockSize: 64, scaleFormat });
      const back = dequantizeBlocks(q, 'fp8e4m3');
      for (let b = 0; b < 4; b++) {
        let amax = 0;
        for (let i = b * 64; i < (b + 1) * 64; i++) amax = Math.max(amax, Math.abs(values[i] as number));
        const s = q.scales[b] as number;
        const exact = Math.max(amax, 1e-4) / 448;
        if (scaleFormat === 'ue8m0') {
          expect(Number.isInteger(Math.log2(s))).toBe(true);
          expect(s).toBeGreaterThanOrEqual(exact);
          expect(s).toBeLessThan(2 * exact);
        } else {
          expect(s).toBe(Math.fround(exact));
        }
        for (let i = b * 64; i < (b + 1) * 64; i++) {
          const err = Math.abs((back[i] as number) - (values[i] as number));
          expect(err).toBeLessThanOrEqual(Math.max(Math.abs(values[i] as number) / 16, s * 2 ** -10) * (1 + 2 ** -20));
        }
      }
    }
  });

  it('counts block scales in storage bytes', () => {
    expect(storageBytes('int8', 256, 32)).toBe(256 + 8 * 4);
    expect(storageBytes('bf16', 10)).toBe(20);
  });
});
