// safetensors: an 8-byte little-endian header length, a JSON header naming each tensor's dtype,
// shape and [begin, end) byte range in the data section, then the data. Everything a file
// claims is checked before a byte of it is used: a malformed, truncated or inconsistent file
// is a FormatError that says where.

import { FormatError } from '@attnkit/tensor-core';

export type SafetensorsDType = 'F32' | 'F16' | 'BF16' | 'F64' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL' | 'F8_E4M3' | 'F8_E5M2';

const DTYPE_BYTES: Readonly<Record<SafetensorsDType, number>> = {
  F64: 8,
  I64: 8,
  F32: 4,
  I32: 4,
  F16: 2,
  BF16: 2,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

export interface SafetensorsEntry {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** The raw little-endian bytes (a view into the file's buffer). */
  readonly bytes: Uint8Array;
}

export interface SafetensorsFile {
  readonly tensors: ReadonlyMap<string, SafetensorsEntry>;
  readonly metadata: Readonly<Record<string, string>>;
}

/** Largest header we accept (the format's reference implementation uses 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

function isDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && value in DTYPE_BYTES;
}

/** Parses a whole .safetensors file held in memory. `source` names it in error messages. */
export function parseSafetensors(buffer: Uint8Array, source = 'safetensors'): SafetensorsFile {
  const fn = 'parseSafetensors';
  function fail(expected: string, got: string): never {
    throw new FormatError({ fn, expected: `${source}: ${expected}`, got });
  }
  if (buffer.byteLength < 8) fail('at least 8 bytes (the header length)', `${buffer.byteLength} bytes`);
  const view = new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(MAX_HEADER_BYTES)) fail(`a header of at most ${MAX_HEADER_BYTES} bytes`, `${headerLength} bytes`);
  const headerEnd = 8 + Number(headerLength);
  if (headerEnd > buffer.byteLength) fail(`a file of at least ${headerEnd} bytes for its header`, `${buffer.byteLength} bytes (truncated)`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(8, headerEnd)));
  } catch (error) {
    fail('a UTF-8 JSON header', `unparseable header (${error instanceof Error ? error.message : String(error)})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('a JSON object header', typeof header);
  const dataLength = buffer.byteLength - headerEnd;
  const tensors = new Map<string, SafetensorsEntry>();
  let metadata: Record<string, string> = {};
  const ranges: [number, number, string][] = [];
  for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof value !== 'object' || value === null) fail('__metadata__ to be an object of strings', JSON.stringify(value));
      metadata = Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, String(v)]));
      continue;
    }
    if (typeof value !== 'object' || value === null) fail(`tensor "${name}" to be an object`, JSON.stringify(value));
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (!isDType(dtype)) fail(`tensor "${name}" to have a known dtype`, JSON.stringify(dtype));
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0)) fail(`tensor "${name}" to have a shape of non-negative integers`, JSON.stringify(shape));
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isInteger(o) && o >= 0)) {
      fail(`tensor "${name}" to have data_offsets [begin, end]`, JSON.stringify(offsets));
    }
    const [begin, end] = offsets as [number, number];
    const dims = shape as number[];
    const expectedBytes = dims.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
    if (end < begin || end - begin !== expectedBytes) {
      fail(`tensor "${name}" (${dtype} [${dims.join(', ')}]) to span ${expectedBytes} bytes`, `data_offsets [${begin}, ${end}]`);
    }
    if (end > dataLength) fail(`tensor "${name}" to end inside the data section (${dataLength} bytes)`, `end ${end} (file truncated?)`);
    ranges.push([begin, end, name]);
    tensors.set(name, { name, dtype, shape: dims, bytes: buffer.subarray(headerEnd + begin, headerEnd + end) });
  }
  // The format requires the tensors to tile the data section without gaps or overlaps.
  ranges.sort((a, b) => a[0] - b[0]);
  let cursor = 0;
  for (const [begin, end, name] of ranges) {
    if (begin !== cursor) fail(`tensor data packed without gaps or overlaps`, `"${name}" starts at ${begin}, previous data ends at ${cursor}`);
    cursor = end;
  }
  if (cursor !== dataLength) fail(`the data section to end with the last tensor (${cursor} bytes)`, `${dataLength} bytes`);
  return { tensors, metadata };
}

/** Decodes an F32 / F16 / BF16 entry into host arrays: f32 values, or the 16-bit patterns. */
export function entryValues(entry: SafetensorsEntry): { dtype: 'f32'; data: Float32Array } | { dtype: 'f16' | 'bf16'; data: Uint16Array } {
  const { bytes } = entry;
  // Copy into aligned storage: the data section need not be 4-byte aligned in memory.
  const aligned = new Uint8Array(bytes.byteLength);
  aligned.set(bytes);
  switch (entry.dtype) {
    case 'F32':
      return { dtype: 'f32', data: new Float32Array(aligned.buffer) };
    case 'F16':
      return { dtype: 'f16', data: new Uint16Array(aligned.buffer) };
    case 'BF16':
      return { dtype: 'bf16', data: new Uint16Array(aligned.buffer) };
    default:
      throw new FormatError({ fn: 'entryValues', expected: `tensor "${entry.name}" stored as F32, F16 or BF16`, got: entry.dtype });
  }
}

export interface SafetensorsInput {
  readonly dtype: 'F32' | 'F16' | 'BF16';
  readonly shape: readonly number[];
  /** F32: Float32Array values; F16/BF16: Uint16Array bit patterns. */
  readonly data: Float32Array | Uint16Array;
}

/** Serialises tensors (sorted by name, as the reference writer does) into a .safetensors buffer. */
export function serializeSafetensors(tensors: Readonly<Record<string, SafetensorsInput>>, metadata: Readonly<Record<string, string>> = {}): Uint8Array {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    if (!t) continue;
    const bytes = t.data.byteLength;
    const expected = t.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[t.dtype];
    if (bytes !== expected) throw new FormatError({ fn: 'serializeSafetensors', expected: `${expected} bytes for "${name}"`, got: `${bytes}` });
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // pad so the data section starts 8-byte aligned
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.byteLength;
  for (const name of names) {
    const t = tensors[name];
    if (!t) continue;
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}
