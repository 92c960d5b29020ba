import type { RopeLayout } from '../kernels.js';
import { ConfigError, ShapeError, formatShape } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { expectDType, expectRank, lastDim, sameBackend } from './validate.js';

export interface RopeOptions {
  /** Pair layout: `interleaved` (2i, 2i+1) for MLA, `halfsplit` (i, i+w/2) for the DSA indexer and Llama. */
  readonly layout: RopeLayout;
  /** First rotated channel (MLA: after the nope part; indexer: 0). Default 0. */
  readonly offset?: number;
  /** Rotated width (even). Default: the whole head dim minus offset. */
  readonly width?: number;
}

/**
 * Rotary position embedding of x [B, S, H, D] (or [S, H, D]) at absolute `positions`
 * (i32 [S], or [B, S] when sequences of a batch sit at different positions), with
 * frequencies `invFreq` [width/2] from `ropeInvFreq`.
 */
export async function rope(x: Tensor, positions: Tensor, invFreq: Tensor, options: RopeOptions): Promise<Tensor> {
  const fn = 'rope';
  const backend = sameBackend(fn, x, positions, invFreq);
  expectDType(fn, 'x', x, 'f32');
  expectRank(fn, 'x', x, 3, 4);
  expectDType(fn, 'positions', positions, 'i32');
  expectDType(fn, 'invFreq', invFreq, 'f32');
  const D = lastDim(x);
  const offset = options.offset ?? 0;
  const width = options.width ?? D - offset;
  if (!Number.isInteger(width) || width <= 0 || width % 2 !== 0) {
    throw new ConfigError({ fn, expected: 'a positive even rotary width', got: String(width) });
  }
  if (!Number.isInteger(offset) || offset < 0 || offset + width > D) {
    throw new ConfigError({ fn, expected: `offset + width ≤ head dim ${D}`, got: `offset ${offset}, width ${width}` });
  }
  if (options.layout !== 'interleaved' && options.layout !== 'halfsplit') {
    throw new ConfigError({ fn, expected: "layout 'interleaved' or 'halfsplit'", got: String(options.layout) });
  }
  if (invFreq.rank !== 1 || invFreq.shape[0] !== width / 2) {
    throw new ShapeError({ fn, expected: `invFreq of shape [${width / 2}]`, got: formatShape(invFreq.shape) });
  }
  const S = x.shape[x.rank - 3];
  const B = x.rank === 4 ? x.shape[0] : 1;
  const okPositions =
    (positions.rank === 1 && positions.shape[0] === S) || (positions.rank === 2 && positions.shape[0] === B && positions.shape[1] === S);
  if (!okPositions) {
    throw new ShapeError({ fn, expected: `positions of shape [${S}] or [${B}, ${S}] for x ${formatShape(x.shape)}`, got: formatShape(positions.shape) });
  }
  return backend.kernels.RoPE({ x, positions, invFreq }, { layout: options.layout, offset, width });
}
