import { ShapeError, formatShape } from '../errors.js';
import { broadcastShapes } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { expectDType, expectMinRank, expectRank, lastDim, sameBackend } from './validate.js';

export interface MatMulOptions {
  /** Use aᵀ (swap a's last two axes). */
  readonly transposeA?: boolean;
  /** Use bᵀ (swap b's last two axes). */
  readonly transposeB?: boolean;
}

/** a [..., M, K] · b [..., K, N] → [..., M, N], batch dims broadcast. */
export async function matmul(a: Tensor, b: Tensor, options: MatMulOptions = {}): Promise<Tensor> {
  const fn = 'matmul';
  const backend = sameBackend(fn, a, b);
  expectDType(fn, 'a', a, 'f32');
  expectDType(fn, 'b', b, 'f32');
  expectMinRank(fn, 'a', a, 2);
  expectMinRank(fn, 'b', b, 2);
  const transposeA = options.transposeA ?? false;
  const transposeB = options.transposeB ?? false;
  const K = a.shape[a.rank - (transposeA ? 2 : 1)];
  const Kb = b.shape[b.rank - (transposeB ? 1 : 2)];
  if (K !== Kb) {
    throw new ShapeError({
      fn,
      expected: `inner dimensions to match (a ${formatShape(a.shape)}${transposeA ? 'ᵀ' : ''} · b ${formatShape(b.shape)}${transposeB ? 'ᵀ' : ''})`,
      got: `${K} and ${Kb}`,
    });
  }
  broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), fn);
  return backend.kernels.MatMul({ a, b }, { transposeA, transposeB });
}

/**
 * y = x · weightᵀ + bias, for x [..., in], weight [out, in] (PyTorch's layout) and bias [out].
 * The weight may be stored as f32, f16, bf16, int8 or fp8e4m3; compute is f32.
 */
export async function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Promise<Tensor> {
  const fn = 'linear';
  const backend = sameBackend(fn, x, weight, bias);
  expectDType(fn, 'x', x, 'f32');
  expectDType(fn, 'weight', weight, 'f32', 'f16', 'bf16', 'int8', 'fp8e4m3');
  expectMinRank(fn, 'x', x, 1);
  expectRank(fn, 'weight', weight, 2);
  if (lastDim(x) !== weight.shape[1]) {
    throw new ShapeError({ fn, expected: `x's last dim to equal weight's in_features (${weight.shape[1]}, weight ${formatShape(weight.shape)})`, got: `x ${formatShape(x.shape)}` });
  }
  if (bias) {
    expectDType(fn, 'bias', bias, 'f32');
    if (bias.rank !== 1 || bias.shape[0] !== weight.shape[0]) {
      throw new ShapeError({ fn, expected: `bias of shape [${weight.shape[0]}]`, got: formatShape(bias.shape) });
    }
  }
  return backend.kernels.Linear({ x, weight, bias }, {});
}
