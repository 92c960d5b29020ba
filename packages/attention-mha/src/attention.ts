import { type Tensor, throwIfAborted } from '@attnkit/tensor-core';
import { dispatchAttention } from './dispatch.js';
import { type SelectionRequest, planAttention } from './plan.js';
import type { AttentionInputs, AttentionProblem } from './problem.js';
import { listDecodeSupport, runListDecode } from './webgpu/webgpu-flash.js';
import type { AttentionOptions, AttentionResult, BlockSparseAttentionOptions, SparseAttentionOptions } from './types.js';
import { type AttentionGeometry, validateAttention, validateIndexTensor } from './validate.js';

/**
 * Scaled dot-product attention, token-major: q [B, S, Hq, D], k [B, T, Hkv, D],
 * v [B, T, Hkv, Dv] → out [B, S, Hq, Dv]. Query head h reads kv head ⌊h / (Hq/Hkv)⌋ (MHA, GQA
 * and MQA in one), without copying K/V per head. Masks: bottom-right causal (default), none,
 * sliding window with sinks, per-sequence key lengths, an explicit additive bias.
 *
 * Runs the backend's fused flash kernel when one accepts the inputs, else a fallback composed
 * of tensor-core primitives; `result.dispatch` says which, and why a fused kernel declined.
 */
export async function attention(q: Tensor, k: Tensor, v: Tensor | null, options: AttentionOptions = {}): Promise<AttentionResult> {
  const fn = 'attention';
  const g = validateAttention(fn, q, k, v, options);
  return run(fn, { q, k, v, bias: options.bias ?? null, rowMap: options.rowMap ?? null, selection: null }, options, g, { kind: 'dense' });
}

/**
 * Attention restricted, per query and kv head, to the listed logical keys: indices i32
 * [B, S, Hkv|1, K], −1 for "no key" (the DSA top-k selection). The list is a set; listed keys
 * that are not visible (past the sequence length, or after the query when causal) are ignored.
 */
export async function sparseAttention(q: Tensor, k: Tensor, v: Tensor | null, indices: Tensor, options: SparseAttentionOptions = {}): Promise<AttentionResult> {
  const fn = 'sparseAttention';
  const g = validateAttention(fn, q, k, v, { ...options, mask: options.causal === false ? 'none' : 'causal' });
  validateIndexTensor(fn, 'indices', indices, g, q);
  const inputs = { q, k, v, bias: options.bias ?? null, rowMap: options.rowMap ?? null, selection: indices };
  let declined: string | undefined;
  if (options.distinctIndices && (options.implementation ?? 'auto') !== 'reference' && options.implementation !== 'composed') {
    const onDevice = deviceListDecode(fn, inputs, options, g, indices);
    if (onDevice.ok) return onDevice.result;
    declined = `webgpu-list-decode: ${onDevice.reason}`;
  }
  const result = await run(fn, inputs, options, g, { kind: 'indices', tensor: indices });
  if (declined === undefined) return result;
  const rest = result.dispatch.declined;
  return { ...result, dispatch: { ...result.dispatch, declined: rest ? `${declined}; ${rest}` : declined } };
}

/**
 * A decode step over a caller-guaranteed duplicate-free key list that stays on the WebGPU device:
 * no host read of the list (the planning step reads every other selection back to check it).
 */
function deviceListDecode(
  fn: string,
  inputs: AttentionInputs,
  options: SparseAttentionOptions,
  g: AttentionGeometry,
  indices: Tensor,
): { readonly ok: true; readonly result: AttentionResult } | { readonly ok: false; readonly reason: string } {
  if (inputs.rowMap) return { ok: false, reason: 'row-pool keys (paged and ring caches)' };
  if (inputs.bias) return { ok: false, reason: 'an additive bias' };
  throwIfAborted(options.signal, fn);
  const problem: AttentionProblem = {
    ...g,
    fn,
    selection: { kind: 'dense' },
    rowMap: null,
    poolRows: g.B * g.T,
    biasShape: null,
    returnLse: options.returnLse ?? false,
    signal: options.signal,
  };
  const list = { tensor: indices, width: indices.shape[3] as number, heads: indices.shape[2] as number };
  const support = listDecodeSupport(inputs.q.backend, inputs, problem, list);
  if (!support.ok) return support;
  const { out, lse } = runListDecode(inputs.q.backend, inputs, problem, list);
  const dispatch = { implementation: 'fused:webgpu-list-decode' };
  return { ok: true, result: lse ? { out, lse, dispatch } : { out, dispatch } };
}

/**
 * Attention restricted to whole key blocks: blockIndices i32 [B, S, Hkv|1, n] name blocks of
 * `blockSize` keys (−1 for none), the NSA selection branch. Causality cuts the query's own block.
 */
export async function blockSparseAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor | null,
  blockIndices: Tensor,
  options: BlockSparseAttentionOptions,
): Promise<AttentionResult> {
  const fn = 'blockSparseAttention';
  const g = validateAttention(fn, q, k, v, { ...options, mask: options.causal === false ? 'none' : 'causal' });
  validateIndexTensor(fn, 'blockIndices', blockIndices, g, q);
  const inputs = { q, k, v, bias: options.bias ?? null, rowMap: options.rowMap ?? null, selection: blockIndices };
  return run(fn, inputs, options, g, { kind: 'blocks', tensor: blockIndices, blockSize: options.blockSize });
}

async function run(fn: string, inputs: AttentionInputs, options: AttentionOptions, g: AttentionGeometry, request: SelectionRequest): Promise<AttentionResult> {
  throwIfAborted(options.signal, fn);
  const problem = await planAttention(fn, inputs, options, g, request);
  const { out, lse, dispatch } = await dispatchAttention(inputs.q.backend, inputs, problem, options.implementation);
  return lse ? { out, lse, dispatch } : { out, dispatch };
}
