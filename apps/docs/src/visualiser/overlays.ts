// What the sparse variants keep, as key masks over the dense heatmap. Each overlay marks, per head
// (or once for every head), which keys every query attends to; the sparse panels draw the dense
// scores of those cells and dim the rest. Pure functions of the packages' picks, so the e2e test
// can recompute every count the page shows.
//
// Axis letters: S queries, T keys (= S, a causal prefill from position 0), H query heads,
// Hkv kv heads, G = H / Hkv, n selected blocks per query and kv head.

export type OverlayKind = 'nsa-selected' | 'nsa-window' | 'nsa-compressed' | 'dsa-topk';

export interface SparseOverlay {
  readonly kind: OverlayKind;
  /** [H, S, T] (per head) or [S, T] (shared by every head): 1 where query i attends to key t. */
  readonly selected: Uint8Array;
  readonly perHead: boolean;
  /** Keys selected per query: [H, S] (per head) or [S]. */
  readonly rowCounts: Int32Array;
  /** A line under the panels: what was selected, with which parameters. */
  readonly caption: string;
}

/** Head h's [S, T] mask of an overlay. */
export function overlayMask(overlay: SparseOverlay, head: number, S: number, T: number): Uint8Array {
  return overlay.perHead ? overlay.selected.subarray(head * S * T, (head + 1) * S * T) : overlay.selected;
}

function countRows(selected: Uint8Array, rows: number, T: number): Int32Array {
  const counts = new Int32Array(rows);
  for (let r = 0; r < rows; r++) {
    let n = 0;
    for (let t = 0; t < T; t++) n += selected[r * T + t] as number;
    counts[r] = n;
  }
  return counts;
}

export function makeOverlay(kind: OverlayKind, selected: Uint8Array, perHead: boolean, S: number, T: number, caption: string): SparseOverlay {
  const rows = selected.length / T;
  if (!Number.isInteger(rows) || (perHead ? rows % S !== 0 : rows !== S)) {
    throw new RangeError(`makeOverlay: expected ${perHead ? `H × ${S}` : S} rows of ${T} keys, got ${selected.length} cells`);
  }
  return { kind, selected, perHead, rowCounts: countRows(selected, rows, T), caption };
}

/**
 * NSA's selected blocks expanded to keys, per query head: query i of head h (kv head ⌊h/G⌋)
 * attends to key t iff ⌊t/l′⌋ is one of its kv head's selected blocks and t ≤ i.
 * `blocks` is the layer's `selectedBlocks` i32 [S, Hkv, n], −1 padded.
 */
export function expandSelectedBlocks(blocks: Int32Array, S: number, H: number, Hkv: number, n: number, slcBlock: number): Uint8Array {
  const T = S;
  const G = H / Hkv;
  const out = new Uint8Array(H * S * T);
  for (let h = 0; h < H; h++) {
    const g = Math.floor(h / G);
    for (let i = 0; i < S; i++) {
      for (let j = 0; j < n; j++) {
        const block = blocks[(i * Hkv + g) * n + j] as number;
        if (block < 0) continue;
        const last = Math.min((block + 1) * slcBlock - 1, i); // causally cut at the query
        for (let t = block * slcBlock; t <= last; t++) out[(h * S + i) * T + t] = 1;
      }
    }
  }
  return out;
}

/** NSA's sliding window, the same for every head: keys max(0, i − w + 1) … i. */
export function windowMask(S: number, window: number): Uint8Array {
  const out = new Uint8Array(S * S);
  for (let i = 0; i < S; i++) for (let t = Math.max(0, i - window + 1); t <= i; t++) out[i * S + t] = 1;
  return out;
}

/**
 * The keys NSA's compressed branch summarises for query i: every token of the compression blocks
 * complete by i (block b covers b·d … b·d + l − 1 and is visible iff b·d + l − 1 ≤ i). The
 * branch attends to those blocks' compressed keys, not to the keys themselves; this is their span.
 */
export function compressedSpanMask(S: number, cmpBlock: number, cmpStride: number): Uint8Array {
  const out = new Uint8Array(S * S);
  for (let i = 0; i < S; i++) {
    const visibleBlocks = i + 1 < cmpBlock ? 0 : Math.floor((i + 1 - cmpBlock) / cmpStride) + 1;
    const end = visibleBlocks === 0 ? -1 : (visibleBlocks - 1) * cmpStride + cmpBlock - 1;
    for (let t = 0; t <= end; t++) out[i * S + t] = 1;
  }
  return out;
}

/** DSA's picks, one selection for every head: `lists[i]` are query i's selected keys. */
export function keyListsMask(lists: readonly (readonly number[])[], S: number): Uint8Array {
  const out = new Uint8Array(S * S);
  lists.forEach((keys, i) => {
    for (const t of keys) out[i * S + t] = 1;
  });
  return out;
}

/**
 * The share of head h's dense attention probability that falls on the overlay's keys, averaged
 * over the queries: how much of what dense attention reads the sparse selection keeps.
 */
export function keptProbability(probs: Float32Array, overlay: SparseOverlay, head: number, S: number, T: number): number {
  const mask = overlayMask(overlay, head, S, T);
  let total = 0;
  for (let i = 0; i < S; i++) {
    let kept = 0;
    for (let t = 0; t < T; t++) if (mask[i * T + t] === 1) kept += probs[(head * S + i) * T + t] as number;
    total += kept;
  }
  return S > 0 ? total / S : 0;
}
