// Compression (spec §4.1): block i covers tokens [i·d, i·d + l − 1]; only complete blocks
// exist, N = ⌊(T − l)/d⌋ + 1. Both φ are built from stride segments of d tokens: block i is
// segments i .. i + l/d − 1, so no token is gathered through an index tensor.

import { add, affine, concat, linear, mean, relu, reshape, slice, sum, transpose, zeros, cast, type Tensor, ShapeError, formatShape } from '@attnkit/tensor-core';
import { compressedBlockCount, type ResolvedNSAConfig } from './config.js';
import { permute } from './layout.js';
import type { CompressorMLP } from './weights.js';

/** φ for one of K or V. */
export interface Compressor {
  readonly kind: 'mean' | 'mlp';
  /** Intra-block position encoding [Hkv, l, C], added to every block before φ. */
  readonly pe: Tensor | null;
  /** The MLP when kind is `mlp`. */
  readonly mlp: CompressorMLP | null;
}

type Geometry = Pick<ResolvedNSAConfig, 'cmpBlock' | 'cmpStride'>;

/**
 * Compresses a run of tokens x [B, T, Hkv, C] that starts at a block boundary into its
 * complete blocks [B, N, Hkv, C] (N = 0 when T < l). Tokens after the last complete block are
 * ignored. x may be stored in any float dtype; the result is f32.
 */
export async function compressBlocks(x: Tensor, phi: Compressor, geometry: Geometry): Promise<Tensor> {
  const fn = 'compressBlocks';
  if (x.rank !== 4) throw new ShapeError({ fn, expected: 'tokens of shape [B, T, Hkv, C]', got: formatShape(x.shape) });
  const [B, T, Hkv, C] = x.shape as readonly [number, number, number, number];
  const { cmpBlock: l, cmpStride: d } = geometry;
  const N = compressedBlockCount(T, geometry);
  if (N === 0) return zeros(x.backend, [B, 0, Hkv, C]);
  const m = l / d; // stride segments per block
  const nSeg = N + m - 1;

  using x32 = x.dtype === 'f32' ? null : await cast(x, 'f32');
  using run = await slice(x32 ?? x, [0, 0, 0, 0], [B, nSeg * d, Hkv, C]);
  using segments = reshape(run, [B, nSeg, d, Hkv, C]); // [B, Nseg, d, Hkv, C]

  if (phi.kind === 'mean') {
    // mean_r(x[i·d + r] + pe[r]) = (Σ of the block's m segment sums)/l + mean_r pe[r]
    using segSums = await sum(segments, 2); // [B, Nseg, Hkv, C]
    using blockSums = await sumShifted(segSums, 1, N, m); // [B, N, Hkv, C]
    if (!phi.pe) return await affine(blockSums, 1 / l);
    using means = await affine(blockSums, 1 / l);
    using peMean = await mean(phi.pe, 1); // [Hkv, C]
    return await add(means, peMean);
  }

  if (!phi.mlp) throw new ShapeError({ fn, expected: "MLP weights for phi 'mlp'", got: 'none' });
  // Block i = segments i..i+m−1 laid end to end: [B, N, l, Hkv, C], token r·d + t of the block.
  const parts: Tensor[] = [];
  try {
    for (let r = 0; r < m; r++) parts.push(await slice(segments, [0, r, 0, 0, 0], [B, N, d, Hkv, C]));
    using windows = parts.length === 1 ? null : await concat(parts, 2);
    const blocks = windows ?? (parts[0] as Tensor); // [B, N, l, Hkv, C]
    using pePerToken = phi.pe ? await transpose(phi.pe, [1, 0, 2]) : null; // [l, Hkv, C]
    using withPE = pePerToken ? await add(blocks, pePerToken) : null;
    using headMajor = await permute(withPE ?? blocks, [0, 1, 3, 2, 4]); // [B, N, Hkv, l, C]
    using z = reshape(headMajor, [B, N, Hkv, l * C]); // row-major flatten: token, then channel
    using hidden = await linear(z, phi.mlp.w1, phi.mlp.b1 ?? null);
    using activated = await relu(hidden);
    return await linear(activated, phi.mlp.w2, phi.mlp.b2 ?? null); // [B, N, Hkv, C]
  } finally {
    for (const p of parts) p.dispose();
  }
}

/** Σ_{r<m} x[..., start + r + i, ...] along `axis` for i < n: a sliding sum of m neighbours. */
export async function sumShifted(x: Tensor, axis: number, n: number, m: number): Promise<Tensor> {
  const size = [...x.shape];
  size[axis] = n;
  const at = (r: number): number[] => x.shape.map((_, i) => (i === axis ? r : 0));
  let acc = await slice(x, at(0), size);
  for (let r = 1; r < m; r++) {
    using next = await slice(x, at(r), size);
    using prev = acc;
    acc = await add(prev, next);
  }
  return acc;
}
