// Token embedding: row `id` of the table for every token.

import { CapacityError, ShapeError, type Tensor, gather, tensor } from '@attnkit/tensor-core';

export class Embedding {
  /** [vocab, dim] (borrowed from the model's Weights). */
  readonly table: Tensor;

  constructor(table: Tensor) {
    this.table = table;
  }

  get vocabSize(): number {
    return this.table.shape[0] ?? 0;
  }

  /** tokens [B][S] (host ids, checked here) → x [B, S, dim]. */
  async forward(tokens: readonly (readonly number[])[]): Promise<Tensor> {
    const fn = 'Embedding.forward';
    const B = tokens.length;
    const S = tokens[0]?.length ?? 0;
    if (B < 1 || S < 1 || tokens.some((row) => row.length !== S)) {
      throw new ShapeError({ fn, expected: 'B ≥ 1 sequences of the same S ≥ 1 tokens', got: `lengths [${tokens.map((r) => r.length).join(', ')}]` });
    }
    const ids = new Int32Array(B * S);
    for (let b = 0; b < B; b++) {
      for (let s = 0; s < S; s++) {
        const id = tokens[b]?.[s] ?? -1;
        if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
          throw new CapacityError({ fn, expected: `token ids in [0, ${this.vocabSize})`, got: `${id} at sequence ${b}, position ${s}` });
        }
        ids[b * S + s] = id;
      }
    }
    using idTensor = tensor(this.table.backend, ids, [B, S], { dtype: 'i32' }); // i32 [B, S]
    return await gather(this.table, idTensor); // [B, S, dim]
  }
}
