// The sparse variants on the visualiser's input, through the packages' public APIs on the demo's
// backend: NSA's three branches and gates (@attnkit/attention-nsa) over the same rotated q, k, v
// as the dense heatmap, and DSA's lightning indexer (@attnkit/indexer-dsa) reading the same
// queries and keys. Both are causal prefills from position 0, whatever the dense view's mask.
//
// Axis letters: S queries = T keys, H query heads, Hkv kv heads, D head dim, n selected blocks,
// X gate input width, H_I / D_I indexer heads / head dim, K picks.

import { NativeSparseAttention, type ResolvedNSAConfig } from '@attnkit/attention-nsa';
import { LightningIndexer, selectedKeys } from '@attnkit/indexer-dsa';
import { type Backend, type Tensor, tensor } from '@attnkit/tensor-core';
import { DemoRandom } from '../demo/random.js';
import { type SparseOverlay, compressedSpanMask, expandSelectedBlocks, keyListsMask, makeOverlay, windowMask } from './overlays.js';
import { type VisualiserInput, makeInputs, projectedInputs, validateInput } from './scores.js';

/** The sparse variants' knobs. NSA's are small versions of the paper's so that 32–128 tokens hold several blocks. */
export interface SparseParams {
  /** NSA compression block length l (paper 32). */
  readonly cmpBlock: number;
  /** NSA compression stride d (paper 16); divides l and l′. */
  readonly cmpStride: number;
  /** NSA selection block length l′ (paper 64). */
  readonly slcBlock: number;
  /** NSA selected blocks n per query and kv head, 1 initial and 2 local ones included (paper 16). */
  readonly nSelected: number;
  /** NSA sliding window w, the query included (paper 512). */
  readonly window: number;
  /** DSA index_topk: keys the indexer keeps per query (V3.2: 2048). */
  readonly topk: number;
}

export const DEFAULT_SPARSE: SparseParams = { cmpBlock: 8, cmpStride: 4, slcBlock: 4, nSelected: 4, window: 8, topk: 8 };

/** Width of the NSA gate input x (random, from the seed: a trained model would feed the layer's input). */
const GATE_DIM = 8;

export interface NSAPicks {
  readonly config: ResolvedNSAConfig;
  /** The layer's `selectedBlocks`, i32 [S, Hkv, n], −1 padded, best first. */
  readonly selectedBlocks: Int32Array;
  readonly selected: SparseOverlay;
  readonly window: SparseOverlay;
  readonly compressed: SparseOverlay;
  /** Sigmoid gates [S, H, 3]: (compressed, selected, window) per query and head. */
  readonly gates: Float32Array;
  /** Which attention-core implementations ran the selected and window branches. */
  readonly implementations: { readonly selected: string; readonly window: string };
}

export interface DSAPicks {
  readonly topkSetting: number;
  /** K = min(index_topk, T): picks per query before the causal cut. */
  readonly topk: number;
  readonly picks: SparseOverlay;
  /** Which indexer implementation scored and picked (fused kernel or composed fallback). */
  readonly implementation: string;
}

export function validateSparse(input: VisualiserInput, p: SparseParams): string | null {
  const positiveInt = (n: number): boolean => Number.isInteger(n) && n > 0;
  if (![p.cmpBlock, p.cmpStride, p.slcBlock, p.nSelected, p.window, p.topk].every(positiveInt)) return 'sparse parameters must be positive integers';
  if (p.cmpBlock % p.cmpStride !== 0 || p.slcBlock % p.cmpStride !== 0) return `NSA: l (${p.cmpBlock}) and l′ (${p.slcBlock}) must be multiples of d (${p.cmpStride})`;
  if (p.nSelected < 3) return 'NSA: n must be at least 3 (1 initial and 2 local blocks are forced)';
  return validateInput(input);
}

/** Runs NSA over the visualiser's q, k, v with random gates; reads back its selection and gates. */
export async function nsaPicks(backend: Backend, input: VisualiserInput, params: SparseParams = DEFAULT_SPARSE): Promise<NSAPicks> {
  const problem = validateSparse(input, params);
  if (problem) throw new RangeError(`nsaPicks: ${problem}`);
  const { seqLen: S, heads: H, kvHeads: Hkv, headDim: D } = input;
  const held: Tensor[] = [];
  const keep = <X extends Tensor>(t: X): X => {
    held.push(t);
    return t;
  };
  try {
    const { q, k, v } = await projectedInputs(backend, input, makeInputs(input), keep);
    // The gates' weights and input come from the seed too (after the dense inputs' draws).
    const rng = new DemoRandom(input.seed ^ 0x5eed);
    const gateWeight = keep(tensor(backend, rng.normals(3 * H * GATE_DIM, 0.6), [3 * H, GATE_DIM]));
    const gateBias = keep(tensor(backend, rng.normals(3 * H, 0.5), [3 * H]));
    const x = keep(tensor(backend, rng.normals(S * GATE_DIM), [1, S, GATE_DIM]));
    const nsa = new NativeSparseAttention(
      {
        nHeads: H,
        nKvHeads: Hkv,
        headDim: D,
        gateDim: GATE_DIM,
        cmpBlock: params.cmpBlock,
        cmpStride: params.cmpStride,
        slcBlock: params.slcBlock,
        nSelected: params.nSelected,
        window: params.window,
      },
      { gateWeight, gateBias },
    );
    const { out, stages, dispatch } = await nsa.forward(q, k, v, x, { returnStages: true });
    keep(out);
    if (!stages) throw new Error('nsaPicks: the layer returned no stages');
    using owned = stages;
    const [blocks, gates] = await Promise.all([owned.selectedBlocks.dataInt(), owned.gates.data()]);
    const c = nsa.config;
    const n = c.nSelected;
    const geometry = `l = ${c.cmpBlock}, d = ${c.cmpStride}, l′ = ${c.slcBlock}`;
    return {
      config: c,
      selectedBlocks: blocks,
      selected: makeOverlay(
        'nsa-selected',
        expandSelectedBlocks(blocks, S, H, Hkv, n, c.slcBlock),
        true,
        S,
        S,
        `NSA selected blocks: top-${n} blocks of l′ = ${c.slcBlock} keys per query and kv head (block 0 and the query's own and previous block forced; ${geometry})`,
      ),
      window: makeOverlay('nsa-window', windowMask(S, c.window), false, S, S, `NSA sliding window: the last w = ${c.window} keys, the query's own included`),
      compressed: makeOverlay(
        'nsa-compressed',
        compressedSpanMask(S, c.cmpBlock, c.cmpStride),
        false,
        S,
        S,
        `NSA compressed branch: the keys summarised by the compression blocks complete at the query (${geometry}; it attends to one mean key per block)`,
      ),
      gates,
      implementations: { selected: dispatch.selected.implementation, window: dispatch.window.implementation },
    };
  } finally {
    for (const t of held) t.dispose();
  }
}

/**
 * Runs DeepSeek-V3.2's lightning indexer over the visualiser's input and reads back its picks.
 * The indexer is built so that it reads the same queries and keys as the dense view: its H_I = H
 * heads are the query heads (wq_b = I on the query latent qr = q), its one key per token is the
 * LayerNorm of the kv heads' mean key (wk averages them), RoPE turns both at the same positions
 * (half-split over all D channels, θ = 10 000), and every head weighs the same (weights_proj reads
 * a constant channel of x). Its picks are then what the scores I[i, t] = Σ_j w_j·ReLU(q_j·k_t)
 * rank highest, min(topk, i + 1) of them per query, shared by every head.
 */
export async function dsaPicks(backend: Backend, input: VisualiserInput, params: SparseParams = DEFAULT_SPARSE): Promise<DSAPicks> {
  const problem = validateSparse(input, params);
  if (problem) throw new RangeError(`dsaPicks: ${problem}`);
  const { seqLen: S, heads: H, kvHeads: Hkv, headDim: D } = input;
  const host = makeInputs(input);
  const dim = Hkv * D + 1; // x = [k of every kv head ‖ 1]
  const Cq = H * D; // qr = q of every head

  const x = new Float32Array(S * dim); // [1, S, dim]
  for (let s = 0; s < S; s++) {
    x.set(host.k.subarray(s * Hkv * D, (s + 1) * Hkv * D), s * dim);
    x[s * dim + dim - 1] = 1;
  }
  const wqB = new Float32Array(Cq * Cq); // [H_I·D_I, Cq] = I
  for (let r = 0; r < Cq; r++) wqB[r * Cq + r] = 1;
  const wk = new Float32Array(D * dim); // [D_I, dim]: the mean over kv heads, channel by channel
  for (let d = 0; d < D; d++) for (let g = 0; g < Hkv; g++) wk[d * dim + g * D + d] = 1 / Hkv;
  const weightsProj = new Float32Array(H * dim); // [H_I, dim]: the constant channel, every head alike
  for (let j = 0; j < H; j++) weightsProj[j * dim + dim - 1] = 1;

  const held: Tensor[] = [];
  const keep = <X extends Tensor>(t: X): X => {
    held.push(t);
    return t;
  };
  try {
    using indexer = LightningIndexer.create(
      backend,
      { dim, qLoraRank: Cq, indexNHeads: H, indexHeadDim: D, qkRopeHeadDim: D, ropeTheta: 10_000, maxSeqLen: 256, indexTopk: params.topk },
      {
        wqB: keep(tensor(backend, wqB, [Cq, Cq])),
        wk: keep(tensor(backend, wk, [D, dim])),
        kNormWeight: keep(tensor(backend, new Float32Array(D).fill(1), [D])),
        kNormBias: keep(tensor(backend, new Float32Array(D), [D])),
        weightsProj: keep(tensor(backend, weightsProj, [H, dim])),
      },
    );
    using selection = await indexer.forward(keep(tensor(backend, x, [1, S, dim])), keep(tensor(backend, host.q, [1, S, Cq])));
    const lists = await selectedKeys(selection);
    return {
      topkSetting: params.topk,
      topk: selection.topk,
      picks: makeOverlay(
        'dsa-topk',
        keyListsMask(lists, S),
        false,
        S,
        S,
        `DSA top-k: the min(${params.topk}, i + 1) keys the lightning indexer scores highest for query i, shared by every head`,
      ),
      implementation: selection.dispatch.implementation,
    };
  } finally {
    for (const t of held) t.dispose();
  }
}
