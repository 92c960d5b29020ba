// `implementation: 'reference'`: the float64 host oracle behind the public API. Reads every
// input to the host; meant for debugging and tests, never for speed.

import { type Backend, tensor } from '@attnkit/tensor-core';
import type { AttentionInputs, AttentionOutputs, AttentionProblem } from './problem.js';
import { type HostBias, type KeySelector, attentionReference } from './reference.js';

export async function referenceAttention(backend: Backend, inputs: AttentionInputs, p: AttentionProblem): Promise<AttentionOutputs> {
  const [q, k, v, biasData] = await Promise.all([
    inputs.q.data(),
    inputs.k.data(),
    inputs.v ? inputs.v.data() : Promise.resolve(null),
    inputs.bias ? inputs.bias.data() : Promise.resolve(null),
  ]);
  const bias: HostBias | null = biasData && p.biasShape ? { data: biasData, shape: p.biasShape } : null;
  const { out, lse } = attentionReference(
    { q, B: p.B, S: p.S, Hq: p.Hq },
    { k, v, Hkv: p.Hkv, D: p.D, Dv: p.Dv, T: p.T, rowMap: p.rowMap, lengths: p.lengths },
    { scale: p.scale, causal: p.causal, window: p.window, sinkTokens: p.sinkTokens, bias, ...selector(p) },
  );
  return {
    out: tensor(backend, out, [p.B, p.S, p.Hq, p.Dv]),
    lse: p.returnLse ? tensor(backend, lse, [p.B, p.S, p.Hq]) : null,
  };
}

function selector(p: AttentionProblem): { select?: KeySelector } {
  const sel = p.selection;
  if (sel.kind === 'dense') return {};
  const listAt = (b: number, i: number, g: number): number =>
    ((b * p.S + i) * (sel.perHead ? p.Hkv : 1) + (sel.perHead ? g : 0)) * sel.width;
  if (sel.kind === 'indices') {
    return { select: (b, i, g) => sel.values.subarray(listAt(b, i, g), listAt(b, i, g) + sel.width) };
  }
  return {
    select: (b, i, g) => {
      const keys: number[] = [];
      const base = listAt(b, i, g);
      for (let j = 0; j < sel.width; j++) {
        const block = sel.values[base + j] as number;
        if (block < 0) continue;
        for (let t = block * sel.blockSize; t < (block + 1) * sel.blockSize; t++) keys.push(t);
      }
      return keys; // a block listed twice repeats its keys; the reference counts each key once
    },
  };
}
