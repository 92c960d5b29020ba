// The SwiGLU feed-forward block (Shazeer, 2020), as in Llama and DeepSeek-V3's dense layers:
// y = W_down (silu(W_gate x) ⊙ W_up x).

import { type Tensor, linear, mul, silu } from '@attnkit/tensor-core';

export interface SwiGLUWeights {
  /** [ffn, dim] */
  readonly gate: Tensor;
  /** [ffn, dim] */
  readonly up: Tensor;
  /** [dim, ffn] */
  readonly down: Tensor;
}

export class SwiGLU {
  readonly weights: SwiGLUWeights;

  constructor(weights: SwiGLUWeights) {
    this.weights = weights;
  }

  /** x [B, S, dim] → [B, S, dim]. */
  async forward(x: Tensor): Promise<Tensor> {
    const { gate, up, down } = this.weights;
    using g = await linear(x, gate); // [B, S, ffn]
    using u = await linear(x, up); // [B, S, ffn]
    using a = await silu(g);
    using h = await mul(a, u);
    return await linear(h, down); // [B, S, dim]
  }
}
