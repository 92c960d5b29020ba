// The reference model's rows of the bad-input catalogue (apps/docs/guide/errors.md): malformed
// safetensors files, then malformed config.json files (../model/config.catalogue.ts). The reader
// checks everything a file claims before it uses a byte of it; a refused file leaves the buffer
// untouched and the next file parses.

import type { Backend } from '@attnkit/tensor-core';
import type { CatalogueRow, CatalogueScene, CatalogueSection } from '@attnkit/testkit';
import { configRows } from '../model/config.catalogue.js';
import { entryValues, parseSafetensors, serializeSafetensors } from './safetensors.js';

export interface FileScene extends CatalogueScene {
  /** A well-formed file: w [2, 3] f32 and b [3] bf16, with metadata. */
  readonly good: Uint8Array;
}

/** A file of the given header (JSON-encoded as is) followed by `dataBytes` zero bytes. */
export function fileWithHeader(header: unknown, dataBytes: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  return out;
}

/** A file whose header-length field says `length`, followed by `rest` bytes. */
function withHeaderLength(length: bigint, rest: number): Uint8Array {
  const out = new Uint8Array(8 + rest);
  new DataView(out.buffer).setBigUint64(0, length, true);
  return out;
}

function fileScene(): Promise<FileScene> {
  const good = serializeSafetensors(
    { w: { dtype: 'F32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }, b: { dtype: 'BF16', shape: [3], data: Uint16Array.from([0x3f80, 0x4000, 0x4040]) } },
    { format: 'pt' },
  );
  return Promise.resolve({
    good,
    inputs: () => ({ tensors: 0, buffers: 0 }),
    snapshot: () => Promise.resolve(Array.from(good)),
    valid() {
      const file = parseSafetensors(good);
      const w = file.tensors.get('w');
      if (!w || Array.from(entryValues(w).data).join() !== '1,2,3,4,5,6') throw new Error('the well-formed file no longer parses');
      return Promise.resolve();
    },
    [Symbol.dispose]() {},
  });
}

const F32x2 = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };

const rows: CatalogueRow<FileScene>[] = [
  { kind: 'file', input: 'fewer than 8 bytes', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /\[parseSafetensors\] expected model\.safetensors: at least 8 bytes \(the header length\), got 3 bytes/, run: () => parseSafetensors(new Uint8Array(3), 'model.safetensors') },
  { kind: 'file', input: 'a header length beyond the 100 MB limit', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /expected model\.safetensors: a header of at most 100000000 bytes, got 18446744073709551615 bytes/, run: () => parseSafetensors(withHeaderLength(2n ** 64n - 1n, 8), 'model.safetensors') },
  { kind: 'file', input: 'a header longer than the file (truncated)', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /expected model\.safetensors: a file of at least 108 bytes for its header, got 16 bytes \(truncated\)/, run: () => parseSafetensors(withHeaderLength(100n, 8), 'model.safetensors') },
  { kind: 'file', input: 'a header that is not JSON', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /expected model\.safetensors: a UTF-8 JSON header, got unparseable header/, run: () => parseSafetensors(fileWithHeader('{{', 0), 'model.safetensors') },
  { kind: 'file', input: 'a header that is not valid UTF-8', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /a UTF-8 JSON header, got unparseable header/, run: () => parseSafetensors(invalidUtf8(), 'model.safetensors') },
  { kind: 'file', input: 'a JSON header that is not an object', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /expected model\.safetensors: a JSON object header, got object/, run: () => parseSafetensors(fileWithHeader([1, 2], 0), 'model.safetensors') },
  { kind: 'file', input: 'a tensor entry that is not an object', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /expected model\.safetensors: tensor "x" to be an object, got 3/, run: () => parseSafetensors(fileWithHeader({ x: 3 }, 0), 'model.safetensors') },
  { kind: 'file', input: 'an unknown dtype', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /expected model\.safetensors: tensor "x" to have a known dtype, got "Q4"/, run: () => parseSafetensors(fileWithHeader({ x: { ...F32x2, dtype: 'Q4' } }, 8), 'model.safetensors') },
  { kind: 'file', input: 'a negative or fractional dimension', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /expected model\.safetensors: tensor "x" to have a shape of non-negative integers, got \[-1\]/, run: () => parseSafetensors(fileWithHeader({ x: { ...F32x2, shape: [-1] } }, 8), 'model.safetensors') },
  { kind: 'file', input: 'data_offsets that are not a [begin, end] pair', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /expected model\.safetensors: tensor "x" to have data_offsets \[begin, end\], got \[0\]/, run: () => parseSafetensors(fileWithHeader({ x: { ...F32x2, data_offsets: [0] } }, 8), 'model.safetensors') },
  { kind: 'file', input: 'a byte range that does not match the shape and dtype', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /expected model\.safetensors: tensor "x" \(F32 \[2\]\) to span 8 bytes, got data_offsets \[0, 4\]/, run: () => parseSafetensors(fileWithHeader({ x: { ...F32x2, data_offsets: [0, 4] } }, 4), 'model.safetensors') },
  { kind: 'file', input: 'tensor data past the end of the file (truncated)', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /expected model\.safetensors: tensor "x" to end inside the data section \(4 bytes\), got end 8 \(file truncated\?\)/, run: () => parseSafetensors(fileWithHeader({ x: F32x2 }, 4), 'model.safetensors') },
  { kind: 'file', input: 'overlapping tensors', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /expected model\.safetensors: tensor data packed without gaps or overlaps, got "y" starts at 4, previous data ends at 8/, run: () => parseSafetensors(fileWithHeader({ x: F32x2, y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, 8), 'model.safetensors') },
  { kind: 'file', input: 'a gap before a tensor', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /tensor data packed without gaps or overlaps, got "x" starts at 4, previous data ends at 0/, run: () => parseSafetensors(fileWithHeader({ x: { ...F32x2, data_offsets: [4, 12] } }, 12), 'model.safetensors') },
  { kind: 'file', input: 'trailing bytes after the last tensor', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /expected model\.safetensors: the data section to end with the last tensor \(8 bytes\), got 12 bytes/, run: () => parseSafetensors(fileWithHeader({ x: F32x2 }, 12), 'model.safetensors') },
  { kind: 'file', input: '__metadata__ that is not an object', call: 'parseSafetensors(bytes)', error: 'FormatError', message: /expected model\.safetensors: __metadata__ to be an object of strings, got "pt"/, run: () => parseSafetensors(fileWithHeader({ __metadata__: 'pt' }, 0), 'model.safetensors') },
  { kind: 'dtype', input: 'reading values of an I64 tensor', call: 'entryValues(entry)', error: 'FormatError', message: /\[entryValues\] expected tensor "ids" stored as F32, F16 or BF16, got I64/, run: () => i64Values() },
  ...configRows<FileScene>(),
];

function invalidUtf8(): Uint8Array {
  const file = fileWithHeader('{"a":1}', 0);
  file[10] = 0xff; // inside the JSON text
  return file;
}

function i64Values(): unknown {
  const file = parseSafetensors(fileWithHeader({ ids: { dtype: 'I64', shape: [1], data_offsets: [0, 8] } }, 8));
  const ids = file.tensors.get('ids');
  if (!ids) throw new Error('unreachable: the header names ids');
  return entryValues(ids);
}

export const REFERENCE_MODEL_CATALOGUE: CatalogueSection<Backend, FileScene> = {
  package: '@attnkit/reference-model',
  summary:
    'The safetensors reader (`apps/reference-model/src/io/safetensors.ts`) and the `config.json` / checkpoint loader (`src/model/config.ts`, `checkpoint.ts`, rows in `src/model/config.catalogue.ts`) of the reference model: every claim of a file is checked before a byte of it is used or a tensor allocated, and a well-formed file parses after each refusal.',
  source: 'apps/reference-model/src/io/errors.catalogue.ts',
  scene: fileScene,
  rows,
};
