// The plain reference of the indexer's scoring and selection (spec §3 steps 5–6): loops over
// host arrays, float64 accumulation, a full sort per row. The fused and composed paths are
// tested against it; `implementation: 'reference'` runs it behind the public API.

export interface IndexerReferenceInputs {
  /** [B, S, H_I, D_I] indexer queries (after RoPE). */
  readonly q: Float32Array;
  /** [B, S, H_I] head weights, already scaled by H_I^−1/2 · D_I^−1/2. */
  readonly weights: Float32Array;
  /** [B, T, D_I] keys (after LayerNorm and RoPE), T the longest sequence. */
  readonly keys: Float32Array;
  readonly B: number;
  readonly S: number;
  readonly heads: number;
  readonly headDim: number;
  readonly T: number;
  /** Keys per sequence; the S queries end each sequence. */
  readonly lengths: readonly number[];
  /** index_topk. */
  readonly topk: number;
}

export interface IndexerReferenceOutputs {
  /** `[B, S, T]`: I[p, t] = Σ_j w_j·ReLU(q_j·k_t) for visible t ≤ p, −∞ elsewhere. */
  readonly scores: Float32Array;
  /** [B, S, K], K = min(topk, T): the min(topk, p+1) best visible keys, best first, ties to the lower index; −1 after them. */
  readonly indices: Int32Array;
  readonly K: number;
}

export function indexerReference(inputs: IndexerReferenceInputs): IndexerReferenceOutputs {
  const { q, weights, keys, B, S, heads: HI, headDim: DI, T, lengths, topk } = inputs;
  const K = Math.min(topk, T);
  const scores = new Float32Array(B * S * T).fill(-Infinity);
  const indices = new Int32Array(B * S * K).fill(-1);
  for (let b = 0; b < B; b++) {
    const len = lengths[b] ?? T;
    for (let i = 0; i < S; i++) {
      const row = b * S + i;
      const p = len - S + i; // bottom-right: the queries end the sequence
      const visible: { t: number; score: number }[] = [];
      for (let t = 0; t <= p; t++) {
        let score = 0;
        for (let j = 0; j < HI; j++) {
          let dot = 0;
          for (let d = 0; d < DI; d++) dot += (q[(row * HI + j) * DI + d] as number) * (keys[(b * T + t) * DI + d] as number);
          score += (weights[row * HI + j] as number) * (dot > 0 ? dot : 0); // ReLU(NaN) = 0, as the kernels
        }
        scores[row * T + t] = score;
        // a NaN score ranks as −∞: after every number, ties toward the lower index
        visible.push({ t, score: Number.isNaN(score) ? -Infinity : Math.fround(score) });
      }
      visible.sort((x, y) => (x.score === y.score ? x.t - y.t : y.score - x.score));
      for (let r = 0; r < Math.min(K, visible.length); r++) indices[row * K + r] = (visible[r] as { t: number }).t;
    }
  }
  return { scores, indices, K };
}
