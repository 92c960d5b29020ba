// Reading a selection back, for tests and the docs' visualiser (never on the hot path: these
// read the picks to the host).

import type { IndexerSelection } from './indexer.js';

/**
 * The selected set S_p of every query as 0/1 masks f32 [B, S, T] (the golden `selected_*`):
 * 1 where the query picked key t, padding and keys it cannot see (t > p) left out.
 */
export async function selectionMask(selection: IndexerSelection): Promise<Float32Array> {
  const lists = await selectedKeys(selection);
  const T = Math.max(...selection.lengths);
  const B = selection.lengths.length;
  const S = lists.length / Math.max(B, 1);
  const mask = new Float32Array(B * S * T);
  lists.forEach((keys, r) => {
    for (const t of keys) mask[r * T + t] = 1;
  });
  return mask;
}

/** Each query's selected keys in ascending order, queries in [b][i] order flattened (B·S lists). */
export async function selectedKeys(selection: IndexerSelection): Promise<number[][]> {
  const picks = await selection.indices.dataInt(); // [B, S, 1, K]
  const K = selection.topk;
  const B = selection.lengths.length;
  const S = picks.length / Math.max(B * K, 1);
  const lists: number[][] = [];
  for (let b = 0; b < B; b++) {
    const start = selection.startPositions[b] ?? 0;
    for (let i = 0; i < S; i++) {
      const p = start + i;
      const keys = new Set<number>();
      for (let j = 0; j < K; j++) {
        const t = picks[(b * S + i) * K + j] as number;
        if (t >= 0 && t <= p) keys.add(t);
      }
      lists.push([...keys].sort((u, v) => u - v));
    }
  }
  return lists;
}
