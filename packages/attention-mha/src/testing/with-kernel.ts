// One fused kernel of the attention core run directly: validation and planning as `attention`
// does them, then that kernel rather than the one `auto` would pick. Tests and benchmarks use it
// to compare variants of a kernel (the WGSL prefill's non-finite strategies) on the same call.

import { ConfigError, type Tensor } from '@attnkit/tensor-core';
import { planAttention } from '../plan.js';
import type { AttentionOutputs, FusedAttentionKernel } from '../problem.js';
import type { AttentionOptions } from '../types.js';
import { validateAttention } from '../validate.js';

/** Dense attention (as `attention(q, k, v, options)`) through `kernel`; throws a ConfigError with its reason if it declines. */
export async function attentionWithKernel(kernel: FusedAttentionKernel, q: Tensor, k: Tensor, v: Tensor | null, options: AttentionOptions = {}): Promise<AttentionOutputs> {
  const fn = 'attentionWithKernel';
  const g = validateAttention(fn, q, k, v, options);
  const inputs = { q, k, v, bias: options.bias ?? null, rowMap: options.rowMap ?? null, selection: null };
  const problem = await planAttention(fn, inputs, options, g, { kind: 'dense' });
  const support = kernel.supports(q.backend, inputs, problem);
  if (!support.ok) throw new ConfigError({ fn, expected: `inputs ${kernel.name} accepts`, got: support.reason });
  return kernel.run(q.backend, inputs, problem);
}
