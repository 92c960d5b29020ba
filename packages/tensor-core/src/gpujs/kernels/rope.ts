// Rotary position embedding of channels [offset, offset + width) of x [B, S, H, D] (or
// [S, H, D]); one thread per element, other channels copied. Pair i turns by
// position · invFreq[i]: channels (2i, 2i+1) when interleaved, (i, i + width/2) when half-split.

import type { RopeLayout } from '../../kernels.js';
import type { Tensor } from '../../tensor.js';
import type { GpujsBackend } from '../backend.js';
import type { KernelSpec } from '../runtime.js';
import { type Arr, type Gpu, INDEX_HELPERS, checkQuotients, idiv } from './common.js';

/** sin r for |r| ≤ π/4: Taylor to r⁹ (the next term is below 2e-9). */
function sinNearZero(r: number): number {
  return r + r * r * r * (-0.16666666666666666 + r * r * (0.008333333333333333 + r * r * (-0.0001984126984126984 + r * r * 0.0000027557319223985893)));
}

/** cos r for |r| ≤ π/4: Taylor to r¹⁰ (the next term is below 2e-10). */
function cosNearZero(r: number): number {
  return 1 + r * r * (-0.5 + r * r * (0.041666666666666664 + r * r * (-0.001388888888888889 + r * r * (0.0000248015873015873 - r * r * 2.755731922398589e-7))));
}

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
  // sin and cos from the angle reduced to [−π/4, π/4] by k·π/2 (π/2 in three parts; k·1.5703125
  // is exact for k < 2^16) and polynomials: GL's sin and cos are not accurate enough (SwiftShader
  // is off by 2e-4 on [−π, π]), and the same code on every mode keeps them in agreement.
  const angle = p * invFreq[i];
  const k = Math.floor(angle * 0.6366197723675814 + 0.5);
  const r = angle - k * 1.5703125 - k * 0.0004838267923332751 - k * 2.5632829192545614e-12;
  const quadrant = k - Math.floor(k * 0.25) * 4;
  const s0 = sinNearZero(r);
  const c0 = cosNearZero(r);
  let c = c0;
  let sn = s0;
  if (quadrant === 1) {
    c = -s0;
    sn = c0;
  }
  if (quadrant === 2) {
    c = -c0;
    sn = -s0;
  }
  if (quadrant === 3) {
    c = s0;
    sn = -c0;
  }
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
  functions: [sinNearZero, cosNearZero, ...INDEX_HELPERS],
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
