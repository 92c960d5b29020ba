// Key/value rows of one tile as f32, wherever and however they are stored. f32 storage is read
// in place (the tile is just a table of row offsets into it); f16, bf16, int8 and fp8 rows are
// decoded once per tile into a scratch block that every query row of the tile then shares.
// The decoders write f32 bit patterns straight into the scratch (no per-element Math.pow, no
// per-row views); `decodeRange` from tensor-core is the reference they are tested against.

import { type CpuStorage, FP8_E4M3_VALUES, decodeRange } from '@attnkit/tensor-core';

export class KvTileRows {
  /** The array the tile's rows live in: the storage itself (f32) or the decoded scratch. */
  readonly data: Float32Array;
  /** Offset of tile row j in `data`. */
  readonly offsets: Int32Array;
  readonly #storage: CpuStorage;
  readonly #width: number;
  readonly #bits: Uint32Array;

  /**
   * @param storage the key (or value) storage
   * @param width channels read from the start of each row (D for keys, Dv for values)
   * @param tileKeys most rows one tile holds
   */
  constructor(storage: CpuStorage, width: number, tileKeys: number) {
    this.#storage = storage;
    this.#width = width;
    this.offsets = new Int32Array(tileKeys);
    this.data = storage.dtype === 'f32' ? storage.data : new Float32Array(tileKeys * width);
    this.#bits = new Uint32Array(this.data.buffer, this.data.byteOffset, storage.dtype === 'f32' ? 0 : this.data.length);
  }

  /** Makes tile row j the row starting at `element` of the storage. */
  load(j: number, element: number): void {
    const s = this.#storage;
    const w = this.#width;
    const at = j * w;
    switch (s.dtype) {
      case 'f32':
        this.offsets[j] = element;
        return;
      case 'bf16': {
        const bits = this.#bits;
        const src = s.data;
        for (let d = 0; d < w; d++) bits[at + d] = (src[element + d] as number) << 16;
        break;
      }
      case 'f16': {
        const bits = this.#bits;
        const src = s.data;
        for (let d = 0; d < w; d++) {
          const h = src[element + d] as number;
          const e = h & 0x7c00;
          if (e !== 0 && e !== 0x7c00) {
            // normal: rebias the exponent (15 → 127) and widen the mantissa
            bits[at + d] = ((h & 0x8000) << 16) | (((h & 0x7fff) + 0x1c000) << 13);
          } else {
            decodeRange(s, element + d, 1, this.data, at + d); // zero, subnormal, inf, NaN
          }
        }
        break;
      }
      case 'int8':
      case 'fp8e4m3': {
        const { data: codes, scales, blockSize } = s;
        const out = this.data;
        const fp8 = s.dtype === 'fp8e4m3';
        for (let d = 0; d < w; ) {
          const block = Math.floor((element + d) / blockSize);
          const scale = scales[block] as number;
          const stop = Math.min(w, (block + 1) * blockSize - element);
          for (; d < stop; d++) {
            const c = codes[element + d] as number;
            out[at + d] = (fp8 ? (FP8_E4M3_VALUES[c] as number) : c) * scale;
          }
        }
        break;
      }
      case 'i32':
        decodeRange(s, element, w, this.data, at);
        break;
    }
    this.offsets[j] = at;
  }
}
