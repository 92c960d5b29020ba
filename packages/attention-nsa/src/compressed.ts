// The compressed branch and the block importance it yields (spec §4.2–4.3), one query chunk
// at a time. Selection needs the probabilities p_cmp themselves, not just the branch output,
// so this branch is matmul → masked softmax → matmul on tensor-core primitives rather than a
// call into the flash-style core (which never materialises probabilities). Each chunk only
// looks at the compressed blocks its last query can see, so prefill stays triangular.

import { concat, matmul, reshape, slice, softmax, sum, zeros, type Tensor } from '@attnkit/tensor-core';
import { permute } from './layout.js';
import { type ResolvedNSAConfig, visibleCompressedBlocks } from './config.js';
import { sumShifted } from './compress.js';
import { type QueryPositions, compressedVisibilityMask } from './positions.js';

/** Per-call operands in head-major layout, transposed once and sliced per chunk. */
export interface HeadMajorOperands {
  /** q [B, Hkv, S, G, D]. */
  readonly q: Tensor;
  /** Compressed keys [B, Hkv, N, D]. */
  readonly k: Tensor;
  /** Compressed values [B, Hkv, N, Dv]. */
  readonly v: Tensor;
}

export interface CompressedChunk extends Disposable {
  /** o_cmp [B, Sc, Hq, Dv]; 0 for a query that sees no complete block. */
  readonly out: Tensor;
  /** Block importance [B, Hkv, Sc, Ns] over the chunk's candidate selection blocks (Ns = ⌊p_last/l′⌋ + 1). */
  readonly importance: Tensor;
}

/** Compressed attention and block importance for queries i0..i1−1. */
export async function compressedChunk(ops: HeadMajorOperands, pos: QueryPositions, i0: number, i1: number, config: ResolvedNSAConfig): Promise<CompressedChunk> {
  const [B, Hkv, , G, D] = ops.q.shape as readonly [number, number, number, number, number];
  const N = ops.k.shape[2] as number;
  const Dv = ops.v.shape[3] as number;
  const Sc = i1 - i0;
  const last = pos.maxIn(i1);
  const nc = Math.min(N, visibleCompressedBlocks(last, config));
  const ns = Math.floor(last / config.slcBlock) + 1;
  const backend = ops.q.backend;
  if (nc === 0) {
    const out = zeros(backend, [B, Sc, Hkv * G, Dv]);
    const importance = zeros(backend, [B, Hkv, Sc, ns]);
    return chunk(out, importance);
  }

  using qSlice = await slice(ops.q, [0, 0, i0, 0, 0], [B, Hkv, Sc, G, D]);
  using q = reshape(qSlice, [B, Hkv, Sc * G, D]); // the group's query heads as extra rows
  using kc = nc === N ? null : await slice(ops.k, [0, 0, 0, 0], [B, Hkv, nc, D]); // blocks the chunk can see
  using vc = nc === N ? null : await slice(ops.v, [0, 0, 0, 0], [B, Hkv, nc, Dv]);
  using scores = await matmul(q, kc ?? ops.k, { transposeB: true }); // [B, Hkv, Sc·G, Nc]
  using scores5 = reshape(scores, [B, Hkv, Sc, G, nc]);
  using mask = compressedVisibilityMask(backend, pos, i0, i1, nc, config); // [Bm, 1, Sc, 1, Nc]
  using probs = await softmax(scores5, { scale: config.scale, mask }); // p_cmp [B, Hkv, Sc, G, Nc]

  using probsFlat = reshape(probs, [B, Hkv, Sc * G, nc]);
  using o = await matmul(probsFlat, vc ?? ops.v); // [B, Hkv, Sc·G, Dv]
  using o5 = reshape(o, [B, Hkv, Sc, G, Dv]);
  using tokenMajor = await permute(o5, [0, 2, 1, 3, 4]); // [B, Sc, Hkv, G, Dv]
  const out = reshape(tokenMajor, [B, Sc, Hkv * G, Dv]); // [B, Sc, Hq, Dv]

  try {
    using groupSum = await sum(probs, 3); // Σ over the G query heads of the group: [B, Hkv, Sc, Nc]
    const importance = await toSelectionBlocks(groupSum, ns, config);
    return chunk(out, importance);
  } catch (error) {
    out.dispose();
    throw error;
  }
}

/**
 * Maps compressed-block probabilities [.., Nc] onto selection blocks [.., Ns]:
 * s[j] = Σ_i p[i]·|block_i ∩ block_j| / d, the number of stride segments the two share.
 * Segment u lies in compressed blocks u−m+1 .. u (m = l/d), so c[u] = Σ_{r<m} p[u − r] is a
 * sliding sum, and s[j] sums the l′/d segments of selection block j. O(Nc), no Nc×Ns matrix.
 */
export async function toSelectionBlocks(p: Tensor, ns: number, config: ResolvedNSAConfig): Promise<Tensor> {
  const { cmpBlock: l, cmpStride: d, slcBlock } = config;
  const m = l / d;
  const perBlock = slcBlock / d;
  const nSeg = ns * perBlock;
  const lead = p.shape.slice(0, -1);
  const nc = p.shape[p.rank - 1] as number;
  const right = nSeg - nc; // ≥ 0: a block complete by p ends in p's selection block or earlier
  const parts = [
    ...(m > 1 ? [zeros(p.backend, [...lead, m - 1])] : []),
    p,
    ...(right > 0 ? [zeros(p.backend, [...lead, right])] : []),
  ];
  using padded = parts.length === 1 ? null : await concat(parts, -1); // [.., m−1 zeros | p | zeros], length nSeg + m − 1
  for (const t of parts) if (t !== p) t.dispose();
  using segments = await sumShifted(padded ?? p, p.rank - 1, nSeg, m); // c [.., nSeg]
  using grouped = reshape(segments, [...lead, ns, perBlock]); // [.., Ns, l′/d]
  return await sum(grouped, -1);
}

function chunk(out: Tensor, importance: Tensor): CompressedChunk {
  return {
    out,
    importance,
    [Symbol.dispose]() {
      out.dispose();
      importance.dispose();
    },
  };
}
