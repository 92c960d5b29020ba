import type { Tensor } from '../tensor.js';
import { broadcastShapes } from '../shape.js';
import { ShapeError, formatShape } from '../errors.js';
import { expectDType, expectFiniteNumber, expectMinRank, sameBackend } from './validate.js';

export interface SoftmaxOptions {
  /** Multiplies x before the mask is added (attention's 1/√D). Default 1. */
  readonly scale?: number;
  /** Additive mask (0 keeps, −∞ hides), broadcast to x. */
  readonly mask?: Tensor | null;
}

function checkMask(fn: string, x: Tensor, mask: Tensor | null): void {
  if (!mask) return;
  expectDType(fn, 'mask', mask, 'f32');
  const shape = broadcastShapes(x.shape, mask.shape, fn);
  if (shape.length !== x.rank || shape.some((d, i) => d !== x.shape[i])) {
    throw new ShapeError({ fn, expected: `a mask that broadcasts to x ${formatShape(x.shape)}`, got: formatShape(mask.shape) });
  }
}

/** softmax(scale·x + mask) over the last axis; a −∞ mask entry is 0 whatever x holds, an all −∞ row gives zeros, NaN among the visible entries makes the row NaN. */
export async function softmax(x: Tensor, options: SoftmaxOptions = {}): Promise<Tensor> {
  const fn = 'softmax';
  const mask = options.mask ?? null;
  const backend = sameBackend(fn, x, mask);
  expectDType(fn, 'x', x, 'f32');
  expectMinRank(fn, 'x', x, 1);
  const scale = options.scale ?? 1;
  expectFiniteNumber(fn, 'scale', scale);
  checkMask(fn, x, mask);
  return backend.kernels.Softmax({ x, mask }, { scale });
}

/** ln Σ exp(scale·x + mask) over the last axis (−∞ for an all −∞ row). */
export async function logSumExp(x: Tensor, options: SoftmaxOptions = {}): Promise<Tensor> {
  const fn = 'logSumExp';
  const mask = options.mask ?? null;
  const backend = sameBackend(fn, x, mask);
  expectDType(fn, 'x', x, 'f32');
  expectMinRank(fn, 'x', x, 1);
  const scale = options.scale ?? 1;
  expectFiniteNumber(fn, 'scale', scale);
  checkMask(fn, x, mask);
  return backend.kernels.LogSumExp({ x, mask }, { scale });
}
