// Rotary position embedding of channels [offset, offset + width) of x [B, S, H, D] (or
// [S, H, D]); one thread per element, other channels copied. Pair i turns by
// position · invFreq[i]: channels (2i, 2i+1) when interleaved, (i, i + width/2) when half-split.

import type { RopeLayout } from '../../kernels.js';
import type { Tensor } from '../../tensor.js';
import type { GpujsBackend } from '../backend.js';
import type { KernelSpec } from '../runtime.js';
import { type Arr, type Gpu, INDEX_HELPERS, checkQuotients, idiv } from './common.js';

// Element e: token t = ⌊e / (H·D)⌋ = b·S + s, channel d = e − ⌊e / D⌋·D. With positions [S]
// the position is positions[t − ⌊t/S⌋·S]; with [B, S] (or B = 1) it is positions[t].
function ropeKernel(
  this: Gpu,
  x: Arr,
  positions: Arr,
  invFreq: Arr,
  S: number,
  H: number,
  D: number,
  perBatch: number,
  interleaved: number,
  offset: number,
  width: number,
): number {
  const v = x[this.thread.x];
  const d = this.thread.x - idiv(this.thread.x, D) * D;
  if (d < offset || d >= offset + width) return v;
  let p = positions[idiv(this.thread.x, H * D)];
  if (perBatch === 0) p = positions[idiv(this.thread.x, H * D) - idiv(idiv(this.thread.x, H * D), S) * S];
  // i: the pair; first: whether this channel is the pair's first member
  let i = (this.thread.x - idiv(this.thread.x, D) * D - offset) >> 1;
  let first = ((this.thread.x - idiv(this.thread.x, D) * D - offset) & 1) === 0 ? 1 : 0;
  if (interleaved === 0) {
    i = d - offset < width >> 1 ? d - offset : d - offset - (width >> 1);
    first = d - offset < width >> 1 ? 1 : 0;
  }
  const angle = p * invFreq[i];
  const c = Math.cos(angle);
  const sn = Math.sin(angle);
  const a = x[idiv(this.thread.x, D) * D + offset + (interleaved === 1 ? 2 * (i | 0) : i | 0)];
  const bb = x[idiv(this.thread.x, D) * D + offset + (interleaved === 1 ? 2 * (i | 0) + 1 : (i | 0) + (width >> 1))];
  if (first === 1) return a * c - bb * sn;
  return a * sn + bb * c;
}

const ROPE: KernelSpec = {
  key: 'rope',
  fn: ropeKernel,
  params: {
    x: 'array',
    positions: 'array',
    invFreq: 'array',
    S: 'int',
    H: 'int',
    D: 'int',
    perBatch: 'int',
    interleaved: 'int',
    offset: 'int',
    width: 'int',
  },
  rank: 1,
  functions: INDEX_HELPERS,
};

export async function ropeTensor(
  backend: GpujsBackend,
  x: Tensor,
  positions: Tensor,
  invFreq: Tensor,
  layout: RopeLayout,
  offset: number,
  width: number,
): Promise<Tensor> {
  const fn = 'rope';
  const D = x.shape[x.rank - 1] as number;
  const H = x.shape[x.rank - 2] as number;
  const S = x.shape[x.rank - 3] as number;
  const B = x.rank === 4 ? (x.shape[0] as number) : 1;
  const X = backend.arrayOf(x, fn);
  const P = backend.arrayOf(positions, fn);
  const F = backend.arrayOf(invFreq, fn);
  if (x.size === 0) return backend.zeroSized(x.shape);
  const perBatch = positions.rank === 2 || B === 1 ? 1 : 0;
  checkQuotients(fn, 'B·S·H rows', B * S * H);
  const out = await backend.run(
    ROPE,
    { x: X, positions: P, invFreq: F, S, H, D, perBatch, interleaved: layout === 'interleaved' ? 1 : 0, offset, width },
    [x.size],
  );
  return backend.wrap(out, x.shape);
}
