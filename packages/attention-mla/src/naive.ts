// The naive order (`attn_impl="naive"`): every visible latent row is expanded into per-head
// keys and values with wkv_b, then it is ordinary multi-head attention.
//
//   [k_nope_{t,h} ; v_{t,h}] = W_b[h] · c_t,   k_{t,h} = [k_nope_{t,h} ‖ k_pe_t]
//   score_{h,t} = σ · [q_nope_h ‖ q_pe_h] · k_{t,h},   o_h = Σ_t p_{h,t} v_{t,h}
//
// The cache still holds only the latent rows; the expansion is transient, redone per call
// over every visible token (which is why decode prefers the absorbed order).

import { type AttentionImplementation, type AttentionResult, attention, sparseAttention } from '@attnkit/attention-mha';
import type { CacheView } from '@attnkit/kvcache';
import { type Tensor, concat, dequantize, linear, mul, reshape, slice } from '@attnkit/tensor-core';
import type { ResolvedMLAConfig } from './config.js';
import { dim } from './dims.js';

export interface NaiveInputs {
  readonly config: ResolvedMLAConfig;
  /** [H(dn+dv), C], any storage dtype `linear` accepts. */
  readonly wkvB: Tensor;
  /** f32 ones [1, H, 1]: broadcasts the shared k_pe to every head. */
  readonly headOnes: Tensor;
  /** [B, S, H, dn+dr], rope slice already rotated. */
  readonly q: Tensor;
  readonly view: CacheView;
  readonly selectedKeys: Tensor | null;
  /** See MLAAttendOptions.distinctSelectedKeys. */
  readonly distinctSelectedKeys: boolean;
  readonly implementation: AttentionImplementation;
  readonly signal: AbortSignal | undefined;
}

/** Per-head attention outputs o [B, S, H·dv] of the naive order (before wo). */
export async function attendNaive(inputs: NaiveInputs): Promise<{ o: Tensor; dispatch: AttentionResult['dispatch'] }> {
  const { config, wkvB, headOnes, q, view, selectedKeys, distinctSelectedKeys, implementation, signal } = inputs;
  const { nHeads: H, kvLoraRank: C, qkNopeHeadDim: dn, qkRopeHeadDim: dr, vHeadDim: dv, softmaxScale: scale } = config;
  const B = dim(q, 0);
  const S = dim(q, 1);

  // The rows to expand: a contiguous cache is cut to the longest sequence, a row pool (paged or
  // ring-buffer cache) is expanded whole and read through its rowMap like any MHA cache.
  const pooled = view.rowMap !== null;
  const T = Math.max(...view.lengths);
  const cut = !pooled && dim(view.keys, 1) > T ? await slice(view.keys, [0, 0, 0, 0], [B, T, 1, C + dr]) : null; // [B, T, 1, C+dr]
  try {
    const stored = cut ?? view.keys;
    const wide = stored.dtype === 'f32' ? null : await dequantize(stored);
    try {
      const rows = wide ?? stored;
      const N = rows.size / (C + dr); // B·T tokens, or R pool rows
      using flat = reshape(rows, [N, C + dr]); // [N, C+dr]
      using latent = await slice(flat, [0, 0], [N, C]); // [N, C]
      using kPe = await slice(flat, [0, C], [N, dr]); // [N, dr]
      using kPeRows = reshape(kPe, [N, 1, dr]); // [N, 1, dr]
      using expanded = await linear(latent, wkvB); // [N, H(dn+dv)]
      using perHead = reshape(expanded, [N, H, dn + dv]); // [N, H, dn+dv]
      using kNope = await slice(perHead, [0, 0, 0], [N, H, dn]); // [N, H, dn]
      using values = await slice(perHead, [0, 0, dn], [N, H, dv]); // [N, H, dv]
      using kPeHeads = await mul(kPeRows, headOnes); // [N, H, dr]: the shared rope key, once per head
      using keys = await concat([kNope, kPeHeads], 2); // [N, H, dn+dr]

      const layout = pooled ? [N] : [B, T];
      using k = reshape(keys, [...layout, H, dn + dr]); // [B, T, H, dn+dr] or [R, H, dn+dr]
      using v = reshape(values, [...layout, H, dv]); // [B, T, H, dv] or [R, H, dv]
      const common = { scale, kvLengths: view.lengths, rowMap: view.rowMap, implementation, ...(signal ? { signal } : {}) };
      const result = selectedKeys ? await sparseAttention(q, k, v, selectedKeys, { ...common, distinctIndices: distinctSelectedKeys }) : await attention(q, k, v, { ...common, mask: 'causal' });
      using out = result.out; // [B, S, H, dv]
      result.lse?.dispose();
      return { o: reshape(out, [B, S, H * dv]), dispatch: result.dispatch }; // [B, S, H·dv]
    } finally {
      wide?.dispose();
    }
  } finally {
    cut?.dispose();
  }
}
