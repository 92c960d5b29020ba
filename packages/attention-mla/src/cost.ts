// Which evaluation order a call should use. Both compute the same function (spec §2); they
// differ in where the work goes:
//
//   naive     expand every visible latent row into per-head K/V, then attend per head over
//             keys of width dn+dr and values of width dv;
//   absorbed  fold W_UK into the queries, attend once over the shared latent rows (keys of
//             width C+dr, values of width C), then apply W_UV to each head's output.
//
// Per sequence, with S new queries, T visible keys and P query–key pairs (causal:
// P = S·T − S(S−1)/2; sparse with K keys per query: P = S·K), in multiply–adds:
//
//   naive    = T·C·H·(dn+dv)          expand K_nope and V
//            + P·H·(dn+dr+dv)         scores and weighted sum
//   absorbed = S·H·dn·C               q̃ = W_UKᵀ q_nope
//            + P·H·(2C+dr)            scores over [c ‖ k_pe] and weighted sum of c
//            + S·H·C·dv               o = W_UV ō
//
// plus the memory traffic of what each order materialises, in f32 elements written once and
// read back once: naive T·H·(dn+dr+dv) (the expanded K and V), absorbed S·H·(2C+dr) (absorbed
// queries and latent outputs). The cost is MACs + e · elements, e = ELEMENT_COST_MACS by
// default; the order with the lower cost wins, ties go to absorbed.
//
// For DeepSeek-V3 (H 128, C 512, dn 128, dr 64, dv 128) a decode step (S = 1) costs naive
// ≈ 16.8M·T MACs vs absorbed ≈ 0.14M·T: absorbed by two orders of magnitude; a prefill
// from position 0 (S = T) is cheaper naive, by up to 3.4× as T grows, because the
// latent keys and values are 3–4× wider than a head's. Decode always takes absorbed (the
// cache-friendly order DeepSeek and FlashMLA use); other calls follow the cost.

import type { ResolvedMLAConfig } from './config.js';

export type MLAOrder = 'naive' | 'absorbed';

/**
 * What writing one f32 element and reading it back costs, in multiply–adds. `pnpm bench`
 * measures it per backend (BENCHMARKS.md): about 1 on the CPU backend, whose matrix products are
 * plain JavaScript. Memory traffic is relatively dearer on GPUs; pass a larger figure to
 * `orderCosts` / `chooseOrder` there. The pick only moves near the crossover: the MAC terms
 * differ by several times everywhere else.
 */
export const ELEMENT_COST_MACS = 1;

export interface OrderCostInput {
  /** New queries per sequence (S). */
  readonly queries: number;
  /** Visible keys per sequence after this call's append (T). */
  readonly keys: number;
  /** Sparse attention: keys each query attends to (DSA top-k); default: every causally visible key. */
  readonly keysPerQuery?: number;
}

export interface OrderCost {
  readonly macs: number;
  /** f32 elements materialised between kernels (written, then read). */
  readonly elements: number;
  /** macs + elementCostMacs · elements. */
  readonly cost: number;
}

/** The cost of each order for one sequence (the formulas at the top of this file). */
export function orderCosts(config: ResolvedMLAConfig, input: OrderCostInput, elementCostMacs = ELEMENT_COST_MACS): Record<MLAOrder, OrderCost> {
  const { nHeads: H, kvLoraRank: C, qkNopeHeadDim: dn, qkRopeHeadDim: dr, vHeadDim: dv } = config;
  const S = input.queries;
  const T = input.keys;
  const causalPairs = S * T - (S * (S - 1)) / 2;
  const P = input.keysPerQuery === undefined ? causalPairs : Math.min(causalPairs, S * input.keysPerQuery);
  const naiveMacs = T * C * H * (dn + dv) + P * H * (dn + dr + dv);
  const naiveElements = T * H * (dn + dr + dv);
  const absorbedMacs = S * H * dn * C + P * H * (2 * C + dr) + S * H * C * dv;
  const absorbedElements = S * H * (2 * C + dr);
  return {
    naive: { macs: naiveMacs, elements: naiveElements, cost: naiveMacs + elementCostMacs * naiveElements },
    absorbed: { macs: absorbedMacs, elements: absorbedElements, cost: absorbedMacs + elementCostMacs * absorbedElements },
  };
}

/** Decode (one query per sequence) → absorbed; otherwise the cheaper order by `orderCosts`. */
export function chooseOrder(config: ResolvedMLAConfig, input: OrderCostInput, elementCostMacs = ELEMENT_COST_MACS): MLAOrder {
  if (input.queries === 1) return 'absorbed';
  const c = orderCosts(config, input, elementCostMacs);
  return c.naive.cost < c.absorbed.cost ? 'naive' : 'absorbed';
}
