// Key/value rows of one tile as f32, wherever and however they are stored. f32 storage is read
// in place (the tile is just a table of row offsets into it); f16, bf16, int8 and fp8 rows are
// decoded once per tile into a scratch block that every query row of the tile then shares.

import { type CpuStorage, decodeRange } from '@attnkit/tensor-core';

export class KvTileRows {
  /** The array the tile's rows live in: the storage itself (f32) or the decoded scratch. */
  readonly data: Float32Array;
  /** Offset of tile row j in `data`. */
  readonly offsets: Int32Array;
  readonly #storage: CpuStorage;
  readonly #width: number;
  readonly #inPlace: boolean;

  /**
   * @param storage the key (or value) storage
   * @param width channels read from the start of each row (D for keys, Dv for values)
   * @param tileKeys most rows one tile holds
   */
  constructor(storage: CpuStorage, width: number, tileKeys: number) {
    this.#storage = storage;
    this.#width = width;
    this.offsets = new Int32Array(tileKeys);
    if (storage.dtype === 'f32') {
      this.data = storage.data;
      this.#inPlace = true;
    } else {
      this.data = new Float32Array(tileKeys * width);
      this.#inPlace = false;
    }
  }

  /** Makes tile row j the row starting at `element` of the storage. */
  load(j: number, element: number): void {
    if (this.#inPlace) {
      this.offsets[j] = element;
    } else {
      const at = j * this.#width;
      decodeRange(this.#storage, element, this.#width, this.data, at);
      this.offsets[j] = at;
    }
  }
}
