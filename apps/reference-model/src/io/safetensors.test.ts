import { AttnkitError, FormatError, encodeBf16 } from '@attnkit/tensor-core';
import { describe, expect, it } from 'vitest';
import { entryValues, parseSafetensors, serializeSafetensors } from './safetensors.js';

function fileWithHeader(header: unknown, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  return out;
}

describe('safetensors', () => {
  it('round-trips f32 and bf16 tensors with metadata', () => {
    const a = Float32Array.from([1, -2.5, 3.25, 0, 7, 8]);
    const b = encodeBf16([0.5, -1, 2]);
    const bytes = serializeSafetensors({ 'w.weight': { dtype: 'F32', shape: [2, 3], data: a }, bias: { dtype: 'BF16', shape: [3], data: b } }, { format: 'pt' });
    const file = parseSafetensors(bytes);
    expect(file.metadata).toEqual({ format: 'pt' });
    const w = file.tensors.get('w.weight');
    expect(w?.shape).toEqual([2, 3]);
    const wv = w ? entryValues(w) : null;
    expect(wv?.dtype).toBe('f32');
    expect(Array.from(wv?.data ?? [])).toEqual(Array.from(a));
    const bias = file.tensors.get('bias');
    const bv = bias ? entryValues(bias) : null;
    expect(bv?.dtype).toBe('bf16');
    expect(Array.from(bv?.data ?? [])).toEqual(Array.from(b));
  });

  it('reads tensors whose data is not 4-byte aligned in memory', () => {
    const bytes = serializeSafetensors({ x: { dtype: 'F32', shape: [2], data: Float32Array.from([1.5, 2.5]) } });
    const shifted = new Uint8Array(bytes.byteLength + 1);
    shifted.set(bytes, 1);
    const x = parseSafetensors(shifted.subarray(1)).tensors.get('x');
    expect(x && Array.from(entryValues(x).data)).toEqual([1.5, 2.5]);
  });

  const bad: [string, Uint8Array, RegExp][] = [
    ['an empty file', new Uint8Array(3), /at least 8 bytes/],
    ['a header longer than the file', (() => { const f = new Uint8Array(16); new DataView(f.buffer).setBigUint64(0, 100n, true); return f; })(), /truncated/],
    ['a header that is not JSON', (() => { const f = new Uint8Array(12); new DataView(f.buffer).setBigUint64(0, 4n, true); f.set([123, 123, 0, 1], 8); return f; })(), /JSON header/],
    ['an unknown dtype', fileWithHeader({ x: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, 1), /known dtype/],
    ['a size that does not match the shape', fileWithHeader({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 4] } }, 4), /span 8 bytes/],
    ['data past the end (truncated file)', fileWithHeader({ x: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, 8), /truncated/],
    ['overlapping tensors', fileWithHeader({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), /without gaps or overlaps/],
    ['trailing bytes after the last tensor', fileWithHeader({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 8), /end with the last tensor/],
    ['a negative dimension', fileWithHeader({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4), /non-negative/],
  ];
  for (const [what, bytes, message] of bad) {
    it(`rejects ${what} with a FormatError`, () => {
      let caught: unknown;
      try {
        parseSafetensors(bytes, 'model.safetensors');
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(FormatError);
      expect(AttnkitError.isInstance(caught)).toBe(true);
      expect(String(caught)).toMatch(message);
      expect(String(caught)).toMatch(/model\.safetensors/);
    });
  }
});
