// The absorbed order ("MQA mode" of the DeepSeek-V3.2 paper, `attn_impl="absorb"`): W_UK is
// folded into the queries and W_UV applied after attending, so attention runs once over the
// shared cached rows [c ‖ k_pe] as one key/value head — values are the latent prefix c of each
// key row, as FlashMLA reads them.
//
//   q̃_h = W_UK[h]ᵀ q_nope_h ∈ R^C
//   score_{h,t} = σ · ([q̃_h ‖ q_pe_h] · [c_t ‖ k_pe_t])
//   ō_h = Σ_t p_{h,t} c_t ∈ R^C,   o_h = W_UV[h] ō_h ∈ R^dv

import { type AttentionImplementation, type AttentionResult, attention, sparseAttention } from '@attnkit/attention-mha';
import type { CacheView } from '@attnkit/kvcache';
import { type Tensor, concat, dequantize, matmul, reshape, slice } from '@attnkit/tensor-core';
import type { ResolvedMLAConfig } from './config.js';
import { dim } from './dims.js';

/** W_UK and W_UV split out of wkv_b once, laid out for batched per-head matmuls. */
export interface AbsorbedWeights extends Disposable {
  /** `[H, dn, C]`: q̃_h = q_nope_h · W_UK[h] (a [1, dn]·[dn, C] product per head). */
  readonly wUK: Tensor;
  /** `[H, dv, C]`: o_h = ō_h · W_UV[h]ᵀ (rows are contiguous over C, the reduction axis). */
  readonly wUV: Tensor;
  dispose(): void;
}

/** Splits wkv_b [H(dn+dv), C] (any storage dtype) into f32 W_UK [H, dn, C] and W_UV [H, dv, C]. */
export async function prepareAbsorbedWeights(wkvB: Tensor, config: ResolvedMLAConfig): Promise<AbsorbedWeights> {
  const { nHeads: H, kvLoraRank: C, qkNopeHeadDim: dn, vHeadDim: dv } = config;
  const wide = wkvB.dtype === 'f32' ? null : await dequantize(wkvB);
  try {
    using perHead = reshape(wide ?? wkvB, [H, dn + dv, C]); // [H, dn+dv, C]: rows of head h are [k_nope | v]
    const wUK = await slice(perHead, [0, 0, 0], [H, dn, C]); // [H, dn, C]
    let wUV: Tensor;
    try {
      wUV = await slice(perHead, [0, dn, 0], [H, dv, C]); // [H, dv, C]
    } catch (error) {
      wUK.dispose();
      throw error;
    }
    const dispose = (): void => {
      wUK.dispose();
      wUV.dispose();
    };
    return { wUK, wUV, dispose, [Symbol.dispose]: dispose };
  } finally {
    wide?.dispose();
  }
}

export interface AbsorbedInputs {
  readonly config: ResolvedMLAConfig;
  readonly weights: AbsorbedWeights;
  /** [B, S, H, dn+dr], rope slice already rotated. */
  readonly q: Tensor;
  readonly view: CacheView;
  readonly selectedKeys: Tensor | null;
  /** See MLAAttendOptions.distinctSelectedKeys. */
  readonly distinctSelectedKeys: boolean;
  readonly implementation: AttentionImplementation;
  readonly signal: AbortSignal | undefined;
}

/** Per-head attention outputs o [B, S, H·dv] of the absorbed order (before wo). */
export async function attendAbsorbed(inputs: AbsorbedInputs): Promise<{ o: Tensor; dispatch: AttentionResult['dispatch'] }> {
  const { config, weights, q, view, selectedKeys, distinctSelectedKeys, implementation, signal } = inputs;
  const { nHeads: H, kvLoraRank: C, qkNopeHeadDim: dn, qkRopeHeadDim: dr, vHeadDim: dv, softmaxScale: scale } = config;
  const B = dim(q, 0);
  const S = dim(q, 1);

  using qNope = await slice(q, [0, 0, 0, 0], [B, S, H, dn]); // [B, S, H, dn]
  using qPe = await slice(q, [0, 0, 0, dn], [B, S, H, dr]); // [B, S, H, dr]
  using qNopeRows = reshape(qNope, [B * S, H, 1, dn]); // [B·S, H, 1, dn]
  using qLatentRows = await matmul(qNopeRows, weights.wUK); // [B·S, H, 1, C]: q̃_h = W_UK[h]ᵀ q_nope_h
  using qLatent = reshape(qLatentRows, [B, S, H, C]); // [B, S, H, C]
  using qAbsorbed = await concat([qLatent, qPe], 3); // [B, S, H, C+dr]

  // One kv head of width C+dr; values are its first C channels (the latent).
  const common = { scale, kvLengths: view.lengths, rowMap: view.rowMap, valueDim: C, implementation, ...(signal ? { signal } : {}) };
  const result = selectedKeys
    ? await sparseAttention(qAbsorbed, view.keys, null, selectedKeys, { ...common, distinctIndices: distinctSelectedKeys })
    : await attention(qAbsorbed, view.keys, null, { ...common, mask: 'causal' });
  using latentOut = result.out; // [B, S, H, C]: ō_h
  result.lse?.dispose();

  using latentRows = reshape(latentOut, [B * S, H, 1, C]); // [B·S, H, 1, C]
  using headRows = await matmul(latentRows, weights.wUV, { transposeB: true }); // [B·S, H, 1, dv]: o_h = W_UV[h] ō_h
  return { o: reshape(headRows, [B, S, H * dv]), dispatch: result.dispatch }; // [B, S, H·dv]
}
