// One pre-norm decoder layer: x = x + attn(norm(x)); x = x + mlp(norm(x)).

import { type Tensor, add } from '@attnkit/tensor-core';
import type { AttentionBlock, LayerCache } from './attention/index.js';
import type { SwiGLU } from './mlp.js';
import type { RMSNorm } from './rmsnorm.js';

export class DecoderLayer implements Disposable {
  readonly attentionNorm: RMSNorm;
  readonly attention: AttentionBlock;
  readonly mlpNorm: RMSNorm;
  readonly mlp: SwiGLU;

  constructor(parts: { attentionNorm: RMSNorm; attention: AttentionBlock; mlpNorm: RMSNorm; mlp: SwiGLU }) {
    this.attentionNorm = parts.attentionNorm;
    this.attention = parts.attention;
    this.mlpNorm = parts.mlpNorm;
    this.mlp = parts.mlp;
  }

  /** x [B, S, dim] → [B, S, dim]; appends the S tokens to this layer's cache. */
  async forward(x: Tensor, cache: LayerCache, signal?: AbortSignal): Promise<Tensor> {
    using h = await this.attentionNorm.forward(x);
    using a = await this.attention.forward(h, cache, signal);
    using mid = await add(x, a); // [B, S, dim]
    using m0 = await this.mlpNorm.forward(mid);
    using m = await this.mlp.forward(m0);
    return await add(mid, m); // [B, S, dim]
  }

  dispose(): void {
    this.attention.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
