// The learned parameters of an NSA layer besides the q/k/v projections (which the caller
// applies): the gate and the two compressors φ_K, φ_V. Shapes are checked against the config.

import { ConfigError, DTypeError, ShapeError, type Tensor, formatShape } from '@attnkit/tensor-core';
import type { ResolvedNSAConfig } from './config.js';

/**
 * φ's MLP (spec §4.1, in the spirit of lucidrains' compressor): the block of l tokens is
 * flattened row-major (token, then channel) to z [l·C] and mapped to W2·ReLU(W1·z + b1) + b2.
 * One set of weights is shared by every kv head.
 */
export interface CompressorMLP {
  /** [H1, l·C] (PyTorch layout, applied as z·W1ᵀ). */
  readonly w1: Tensor;
  /** [H1], or null for none. */
  readonly b1?: Tensor | null;
  /** [C, H1]. */
  readonly w2: Tensor;
  /** [C], or null for none. */
  readonly b2?: Tensor | null;
}

export interface NSAWeights {
  /**
   * Gate projection W_g [3·Hq, gateDim]: the gate logits of one token, viewed as [Hq, 3], are
   * (cmp, slc, win) per head — interleaved by head, not [3, Hq] (spec pitfall 11).
   */
  readonly gateWeight: Tensor;
  /** Gate bias b_g [3·Hq], same order; null for none. */
  readonly gateBias: Tensor | null;
  /** Intra-block key position encoding pe_k [Hkv, l, D], added to each key of a block before φ. */
  readonly keyPE?: Tensor | null;
  /** Intra-block value position encoding pe_v [Hkv, l, Dv]. */
  readonly valuePE?: Tensor | null;
  /** φ_K when `phi: 'mlp'`: z [l·D] → [D]. */
  readonly keyMLP?: CompressorMLP | null;
  /** φ_V when `phi: 'mlp'`: z [l·Dv] → [Dv]. */
  readonly valueMLP?: CompressorMLP | null;
}

/** Checks every weight against the config; throws ShapeError / DTypeError / ConfigError. */
export function validateNSAWeights(weights: NSAWeights, config: ResolvedNSAConfig, fn = 'NativeSparseAttention'): void {
  const { nHeads: Hq, nKvHeads: Hkv, headDim: D, vHeadDim: Dv, gateDim, cmpBlock: l } = config;
  expect(fn, 'gateWeight', weights.gateWeight, [3 * Hq, gateDim], true);
  if (weights.gateBias) expect(fn, 'gateBias', weights.gateBias, [3 * Hq], false);
  if (weights.keyPE) expect(fn, 'keyPE', weights.keyPE, [Hkv, l, D], false);
  if (weights.valuePE) expect(fn, 'valuePE', weights.valuePE, [Hkv, l, Dv], false);

  if (config.phi === 'mlp') {
    if (!weights.keyMLP || !weights.valueMLP) {
      throw new ConfigError({ fn, expected: "keyMLP and valueMLP weights with phi 'mlp'", got: `${weights.keyMLP ? '' : 'no keyMLP '}${weights.valueMLP ? '' : 'no valueMLP'}`.trim() });
    }
    validateMLP(fn, 'keyMLP', weights.keyMLP, l * D, D);
    validateMLP(fn, 'valueMLP', weights.valueMLP, l * Dv, Dv);
  } else if (weights.keyMLP || weights.valueMLP) {
    throw new ConfigError({ fn, expected: "no compressor MLP with phi 'mean'", got: 'keyMLP/valueMLP weights (set phi: "mlp" to use them)' });
  }
}

function validateMLP(fn: string, name: string, mlp: CompressorMLP, inDim: number, outDim: number): void {
  const hidden = mlp.w1.shape[0] ?? 0;
  expect(fn, `${name}.w1`, mlp.w1, [hidden, inDim], true);
  if (mlp.b1) expect(fn, `${name}.b1`, mlp.b1, [hidden], false);
  expect(fn, `${name}.w2`, mlp.w2, [outDim, hidden], true);
  if (mlp.b2) expect(fn, `${name}.b2`, mlp.b2, [outDim], false);
}

/** Linear weights may be stored compressed (the Linear kernel decodes them); everything else is f32. */
function expect(fn: string, name: string, t: Tensor, shape: readonly number[], linearWeight: boolean): void {
  t.assertAlive(fn);
  const allowed = linearWeight ? ['f32', 'f16', 'bf16', 'int8', 'fp8e4m3'] : ['f32'];
  if (!allowed.includes(t.dtype)) throw new DTypeError({ fn, expected: `${name} of dtype ${allowed.join('/')}`, got: t.dtype });
  if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new ShapeError({ fn, expected: `${name} of shape ${formatShape(shape)}`, got: formatShape(t.shape) });
  }
}
