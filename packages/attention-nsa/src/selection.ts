// Top-n block selection (spec §4.4) and the selected-block branch (§4.5).

import { blockSparseAttention, type AttentionResult } from '@attnkit/attention-mha';
import { add, tensor, topK, type Tensor } from '@attnkit/tensor-core';
import { permute } from './layout.js';
import type { ResolvedNSAConfig } from './config.js';
import { type QueryPositions, selectionMask } from './positions.js';

/**
 * Picks the selection blocks of queries i0..i1−1 from their importance [B, Hkv, Sc, Ns]
 * (shared by the G query heads of each kv head): candidates j ≤ ⌊p/l′⌋, forced blocks first
 * (ties toward the lower index), then the best scores. Returns i32 [B, Sc, Hkv, n] in
 * descending score order; a query with fewer than n candidates takes all of them and the
 * remaining slots are −1.
 */
export async function selectBlocks(importance: Tensor, pos: QueryPositions, i0: number, i1: number, config: ResolvedNSAConfig): Promise<Tensor> {
  const [B, Hkv, Sc, ns] = importance.shape as readonly [number, number, number, number];
  const n = config.nSelected;
  const k = Math.min(n, ns);
  using mask = selectionMask(importance.backend, pos, i0, i1, ns, config); // [Bm, 1, Sc, Ns]
  using scored = await add(importance, mask);
  const top = await topK(scored, k);
  top.values.dispose();
  using indices = top.indices; // [B, Hkv, Sc, k]

  // Past the first n selection blocks every query has ≥ n candidates and top-n is all there is:
  // the indices stay on the device. Earlier queries (and short sequences) have fewer, and the
  // −∞ non-candidates that top-k had to return become −1; their count is known from p alone.
  if (pos.minIn(i0) >= (n - 1) * config.slcBlock) return await permute(indices, [0, 2, 1, 3]);

  const picked = await indices.dataInt();
  const out = new Int32Array(B * Sc * Hkv * n).fill(-1);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < Sc; i++) {
      const candidates = Math.floor(pos.at(b, i0 + i) / config.slcBlock) + 1;
      const take = Math.min(candidates, k);
      for (let h = 0; h < Hkv; h++) {
        const src = ((b * Hkv + h) * Sc + i) * k;
        const dst = ((b * Sc + i) * Hkv + h) * n;
        for (let t = 0; t < take; t++) out[dst + t] = picked[src + t] as number;
      }
    }
  }
  return tensor(importance.backend, out, [B, Sc, Hkv, n]);
}

/**
 * The selected-block branch: attention over the whole contiguous blocks of `blockIndices`
 * (i32 [B, S, Hkv, n], −1 = none), the query's own block cut at p. Runs on the attention core.
 */
export function selectedAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  blockIndices: Tensor,
  config: ResolvedNSAConfig,
  layout: { readonly kvLengths?: readonly number[]; readonly rowMap?: Tensor | null; readonly signal?: AbortSignal },
): Promise<AttentionResult> {
  return blockSparseAttention(q, k, v, blockIndices, { blockSize: config.slcBlock, scale: config.scale, ...layout });
}
