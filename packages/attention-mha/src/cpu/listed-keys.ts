// The keys one sparse list names for one query and kv head, as the CPU kernels read them: a set
// (repeats and −1 dropped), visible ones only (before `end`), blocks expanded to their keys.

import type { KeySelection } from '../problem.js';

type SparseSelection = Exclude<KeySelection, { readonly kind: 'dense' }>;

/**
 * Scratch for `listedKeys`, sized once per call: `list` holds up to the most keys a list can
 * name, `listedBy` remembers which list last took each key (or block), so no clearing is needed.
 */
export class ListedKeys {
  readonly list: Int32Array;
  readonly #listedBy: Int32Array;
  readonly #selection: SparseSelection;

  constructor(selection: SparseSelection, T: number) {
    this.#selection = selection;
    this.list = new Int32Array(Math.min(T, selection.kind === 'indices' ? selection.width : selection.width * selection.blockSize));
    this.#listedBy = new Int32Array(selection.kind === 'indices' ? T : Math.ceil(T / selection.blockSize)).fill(-1);
  }

  /**
   * Fills `list` with the keys in [0, end) named by the list at `base` of the selection's values;
   * `listId` must differ between lists of one call. Returns how many keys it wrote.
   */
  gather(base: number, end: number, listId: number): number {
    const selection = this.#selection;
    const { list } = this;
    const listedBy = this.#listedBy;
    let count = 0;
    if (selection.kind === 'indices') {
      for (let j = 0; j < selection.width; j++) {
        const t = selection.values[base + j] as number;
        if (t < 0 || t >= end || listedBy[t] === listId) continue;
        listedBy[t] = listId;
        list[count++] = t;
      }
      return count;
    }
    const bs = selection.blockSize;
    for (let j = 0; j < selection.width; j++) {
      const blk = selection.values[base + j] as number;
      if (blk < 0 || listedBy[blk] === listId) continue;
      listedBy[blk] = listId;
      const stop = Math.min((blk + 1) * bs, end);
      for (let t = blk * bs; t < stop; t++) list[count++] = t;
    }
    return count;
  }
}
