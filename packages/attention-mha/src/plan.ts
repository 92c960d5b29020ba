// From a validated call to an AttentionProblem: reads the small index tensors (row map, sparse
// indices) to the host once and checks their values, so no implementation ever follows an
// index out of its buffer.

import { CapacityError, ConfigError, type Tensor, isCpuBackend } from '@attnkit/tensor-core';
import type { AttentionInputs, AttentionProblem, KeySelection } from './problem.js';
import type { AttentionOptions } from './types.js';
import { type AttentionGeometry, biasShape4 } from './validate.js';

/** How the caller restricted the keys: dense, per-query key indices, or key blocks. */
export type SelectionRequest =
  | { readonly kind: 'dense' }
  | { readonly kind: 'indices'; readonly tensor: Tensor }
  | { readonly kind: 'blocks'; readonly tensor: Tensor; readonly blockSize: number };

export async function planAttention(
  fn: string,
  inputs: AttentionInputs,
  options: AttentionOptions,
  g: AttentionGeometry,
  request: SelectionRequest,
): Promise<AttentionProblem> {
  const rowMap = inputs.rowMap ? await hostInts(inputs.rowMap) : null;
  const poolRows = inputs.rowMap ? (inputs.k.shape[0] as number) : g.B * g.T;
  if (rowMap) checkRowMap(fn, rowMap, g, poolRows);
  const selection = await resolveSelection(fn, request, g);
  return {
    ...g,
    fn,
    selection,
    rowMap,
    poolRows,
    biasShape: inputs.bias ? biasShape4(inputs.bias) : null,
    returnLse: options.returnLse ?? false,
    signal: options.signal,
  };
}

/** The i32 values of a tensor: the CPU backend's array itself (read-only), else a read-back copy. */
async function hostInts(t: Tensor): Promise<Int32Array> {
  const backend = t.backend;
  return isCpuBackend(backend) ? backend.viewInt(t) : t.dataInt();
}

function checkRowMap(fn: string, rowMap: Int32Array, g: AttentionGeometry, poolRows: number): void {
  // Only visible keys are read; entries past a sequence's length may hold anything (−1, stale rows).
  for (let b = 0; b < g.B; b++) {
    const len = g.lengths[b] ?? g.T;
    for (let t = 0; t < len; t++) {
      const row = rowMap[b * g.T + t] as number;
      if (!(row >= 0 && row < poolRows)) {
        throw new CapacityError({ fn, expected: `rowMap entries of the ${len} valid keys of sequence ${b} in [0, ${poolRows}) (pool rows)`, got: `${row} at [${b}, ${t}]` });
      }
    }
  }
}

async function resolveSelection(fn: string, request: SelectionRequest, g: AttentionGeometry): Promise<KeySelection> {
  if (request.kind === 'dense') return { kind: 'dense' };
  const t = request.tensor;
  const values = await hostInts(t);
  const perHead = t.shape[2] !== 1 || g.Hkv === 1;
  const width = t.shape[3] as number;
  if (request.kind === 'indices') {
    checkRange(fn, 'indices', values, g.T);
    return { kind: 'indices', values, perHead, width };
  }
  const { blockSize } = request;
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new ConfigError({ fn, expected: 'a positive integer blockSize', got: String(blockSize) });
  checkRange(fn, 'blockIndices', values, Math.ceil(g.T / blockSize));
  return { kind: 'blocks', values, perHead, width, blockSize };
}

function checkRange(fn: string, name: string, values: Int32Array, limit: number): void {
  for (let i = 0; i < values.length; i++) {
    const x = values[i] as number;
    if (x < -1 || x >= limit) throw new CapacityError({ fn, expected: `${name} in [-1, ${limit}) (−1 for none)`, got: `${x} at flat position ${i}` });
  }
}
