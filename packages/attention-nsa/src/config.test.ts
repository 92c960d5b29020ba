import { AttnkitError, ConfigError } from '@attnkit/tensor-core';
import { describe, expect, it } from 'vitest';
import {
  type NSAConfig,
  NSA_PAPER_DEFAULTS,
  compressedBlockCount,
  keysReadPerStep,
  resolveNSAConfig,
  selectionBlockCount,
  visibleCompressedBlocks,
} from './config.js';

const HEADS = { nHeads: 64, nKvHeads: 4, headDim: 192, vHeadDim: 128, gateDim: 2560 } as const;

describe('resolveNSAConfig', () => {
  it("fills in the paper's hyperparameters", () => {
    const c = resolveNSAConfig(HEADS);
    expect(c).toMatchObject({ ...NSA_PAPER_DEFAULTS, groupSize: 16, cmpBlock: 32, cmpStride: 16, slcBlock: 64, nSelected: 16, nInit: 1, nLocal: 2, window: 512 });
    expect(c.scale).toBeCloseTo(1 / Math.sqrt(192), 15);
  });

  it('defaults vHeadDim to headDim and keeps an explicit scale', () => {
    const c = resolveNSAConfig({ nHeads: 2, nKvHeads: 1, headDim: 8, gateDim: 4, scale: 0.5 });
    expect(c.vHeadDim).toBe(8);
    expect(c.scale).toBe(0.5);
  });

  const bad: [string, Partial<NSAConfig>, RegExp][] = [
    ['l not a multiple of d', { cmpBlock: 24, cmpStride: 16 }, /cmpBlock \(l\) to be a multiple of cmpStride \(d = 16\), got l = 24/],
    ["l′ not a multiple of d", { slcBlock: 40, cmpStride: 16 }, /slcBlock \(l′\) to be a multiple of cmpStride/],
    ['more forced blocks than n', { nSelected: 2, nInit: 1, nLocal: 2 }, /nInit \+ nLocal ≤ nSelected \(2\), got 1 \+ 2 = 3/],
    ['a window of 0', { window: 0 }, /window \(w\) to be a positive integer, got 0/],
    ['top-n of 0', { nSelected: 0 }, /nSelected \(n\) to be a positive integer, got 0/],
    ['a stride of 0', { cmpStride: 0 }, /cmpStride \(d\) to be a positive integer/],
    ['a fractional block', { cmpBlock: 31.5 }, /cmpBlock \(l\) to be a positive integer/],
    ['negative initial blocks', { nInit: -1 }, /nInit to be a non-negative integer/],
    ['heads not a multiple of kv heads', { nHeads: 6, nKvHeads: 4 }, /nHeads \(6\) to be a multiple of nKvHeads/],
    ['an unknown φ', { phi: 'max' as 'mean' }, /phi 'mean' or 'mlp', got max/],
    ['a NaN scale', { scale: Number.NaN }, /positive finite softmax scale/],
  ];
  for (const [what, patch, message] of bad) {
    it(`rejects ${what} with a ConfigError`, () => {
      let caught: unknown;
      try {
        resolveNSAConfig({ ...HEADS, ...patch }, 'test');
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(ConfigError);
      expect(AttnkitError.isInstance(caught)).toBe(true);
      expect(String(caught)).toMatch(/^ConfigError: \[test\] expected /);
      expect(String(caught)).toMatch(message);
    });
  }

  it('allows nLocal 0 and forced blocks filling all of n', () => {
    expect(resolveNSAConfig({ ...HEADS, nSelected: 3, nInit: 3, nLocal: 0 }).nLocal).toBe(0);
  });
});

describe('block arithmetic', () => {
  const paper = resolveNSAConfig(HEADS);

  it('counts only complete compression blocks', () => {
    expect(compressedBlockCount(31, paper)).toBe(0);
    expect(compressedBlockCount(32, paper)).toBe(1);
    expect(compressedBlockCount(47, paper)).toBe(1);
    expect(compressedBlockCount(48, paper)).toBe(2);
    expect(compressedBlockCount(300, paper)).toBe(17); // nsa_paper_blocks
  });

  it('makes block i visible at p = i·d + l − 1', () => {
    expect(visibleCompressedBlocks(30, paper)).toBe(0);
    expect(visibleCompressedBlocks(31, paper)).toBe(1);
    expect(visibleCompressedBlocks(46, paper)).toBe(1);
    expect(visibleCompressedBlocks(47, paper)).toBe(2);
  });

  it('counts the partial last selection block', () => {
    expect(selectionBlockCount(64, paper)).toBe(1);
    expect(selectionBlockCount(65, paper)).toBe(2);
    expect(selectionBlockCount(300, paper)).toBe(5);
  });

  it('reads N_cmp + n·l′ + w keys per decode step at 64K (vs T)', () => {
    const keys = keysReadPerStep(65536, paper);
    expect(keys).toEqual({ compressed: 4095, selected: 1024, window: 512, total: 5631, dense: 65536 });
    expect(keys.dense / keys.total).toBeCloseTo(11.64, 2);
    expect(keysReadPerStep(100, paper)).toEqual({ compressed: 5, selected: 100, window: 100, total: 205, dense: 100 });
  });
});
