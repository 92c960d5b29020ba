// RMSNorm (Zhang & Sennrich, 2019): y = x / √(mean(x²) + ε) · w, over the last axis.

import { type Tensor, rmsNorm } from '@attnkit/tensor-core';

export class RMSNorm {
  /** w [dim] (borrowed from the model's Weights). */
  readonly weight: Tensor;
  readonly eps: number;

  constructor(weight: Tensor, eps: number) {
    this.weight = weight;
    this.eps = eps;
  }

  /** x [B, S, dim] → [B, S, dim]. */
  async forward(x: Tensor): Promise<Tensor> {
    return rmsNorm(x, this.weight, this.eps);
  }
}
