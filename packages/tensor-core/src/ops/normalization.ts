import { ConfigError, ShapeError, formatShape } from '../errors.js';
import type { Tensor } from '../tensor.js';
import { expectDType, expectMinRank, lastDim, sameBackend } from './validate.js';

function checkParam(fn: string, name: string, x: Tensor, p: Tensor | null): void {
  if (!p) return;
  expectDType(fn, name, p, 'f32', 'f16', 'bf16');
  if (p.rank !== 1 || p.shape[0] !== lastDim(x)) {
    throw new ShapeError({ fn, expected: `${name} of shape [${lastDim(x)}] (x is ${formatShape(x.shape)})`, got: formatShape(p.shape) });
  }
}

function checkEps(fn: string, eps: number): void {
  if (!(eps > 0) || !Number.isFinite(eps)) throw new ConfigError({ fn, expected: 'eps > 0', got: String(eps) });
}

/** RMSNorm over the last axis (DeepSeek: eps 1e-6). */
export async function rmsNorm(x: Tensor, weight: Tensor | null, eps = 1e-6): Promise<Tensor> {
  const fn = 'rmsNorm';
  const backend = sameBackend(fn, x, weight);
  expectDType(fn, 'x', x, 'f32');
  expectMinRank(fn, 'x', x, 1);
  checkParam(fn, 'weight', x, weight);
  checkEps(fn, eps);
  return backend.kernels.RMSNorm({ x, weight }, { eps });
}

/** LayerNorm over the last axis with biased variance (the DSA indexer key: eps 1e-6). */
export async function layerNorm(x: Tensor, weight: Tensor | null, bias: Tensor | null, eps = 1e-6): Promise<Tensor> {
  const fn = 'layerNorm';
  const backend = sameBackend(fn, x, weight, bias);
  expectDType(fn, 'x', x, 'f32');
  expectMinRank(fn, 'x', x, 1);
  checkParam(fn, 'weight', x, weight);
  checkParam(fn, 'bias', x, bias);
  checkEps(fn, eps);
  return backend.kernels.LayerNorm({ x, weight, bias }, { eps });
}
