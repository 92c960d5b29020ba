// Where the sparse variants' picks go on the heatmap. Each overlay marks, per head, which keys
// every query attends to; the heatmap outlines those cells over the dense scores.
//
// TODO(attention-nsa): compute `nsaSelectedBlocks` with @attnkit/attention-nsa on the visualiser's
// input (spec §4: compression l = 32 / d = 16 would need ≥ 64 tokens; use small blocks here, e.g.
// l = 8, d = 4, l′ = 8, n = 4, window 8) and return its selected blocks expanded to keys: query i
// of head h marks keys t with ⌊t/l′⌋ selected and t ≤ i. Show the window and compressed branches
// as their own overlays, and the gates per head.
//
// TODO(indexer-dsa): compute `dsaTopK` with @attnkit/indexer-dsa (spec §3): index scores
// I[i, t] = Σ_j w_j·ReLU(q_I,j·k_I,t), then the min(index_topk, i + 1) best visible keys of every
// query. One selection is shared by all heads (it comes from the indexer, not from the heads).

export type OverlayKind = 'nsa-selected-blocks' | 'dsa-topk';

export interface SparseOverlay {
  readonly kind: OverlayKind;
  /** [H, S, T] (per head) or [S, T] (shared by every head): 1 where query i attends to key t. */
  readonly selected: Uint8Array;
  readonly perHead: boolean;
  /** A line under the heatmap: what was selected, with which parameters. */
  readonly caption: string;
}

export interface PendingOverlay {
  readonly kind: OverlayKind;
  readonly title: string;
  /** The package that will provide it. */
  readonly pkg: string;
  readonly guide: string;
}

/** The overlays the visualiser has places for, until their packages land. */
export const PENDING_OVERLAYS: readonly PendingOverlay[] = [
  { kind: 'nsa-selected-blocks', title: "NSA's selected blocks", pkg: '@attnkit/attention-nsa', guide: '/packages/attention-nsa' },
  { kind: 'dsa-topk', title: "DSA's top-k picks", pkg: '@attnkit/indexer-dsa', guide: '/packages/indexer-dsa' },
];

/** Whether query i attends to key t for head h under an overlay. */
export function overlaySelects(overlay: SparseOverlay, head: number, i: number, t: number, S: number, T: number): boolean {
  const offset = overlay.perHead ? head * S * T : 0;
  return overlay.selected[offset + i * T + t] === 1;
}
