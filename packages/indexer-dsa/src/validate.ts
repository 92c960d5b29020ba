// Boundary checks shared by the indexer and the DSA layer.

import { type Backend, BackendError, CapacityError, ConfigError, DTypeError, ShapeError, type Tensor, formatShape } from '@attnkit/tensor-core';

/** An f32 activation [B, S, width] with B, S ≥ 1 on `backend`; returns [B, S]. */
export function expectActivation(fn: string, name: string, t: Tensor, backend: Backend, width: number): [number, number] {
  t.assertAlive(fn);
  if (t.backend !== backend) throw new BackendError({ fn, expected: `${name} on ${backend.info.name}`, got: `a tensor on ${t.backend.info.name}` });
  if (t.dtype !== 'f32') throw new DTypeError({ fn, expected: `${name} of dtype f32`, got: t.dtype });
  const [B = 0, S = 0, W] = t.shape;
  if (t.rank !== 3 || W !== width || B < 1 || S < 1) throw new ShapeError({ fn, expected: `${name} of shape [B, S, ${width}] with B, S ≥ 1`, got: formatShape(t.shape) });
  return [B, S];
}

/** i32 positions [B, S] or [S] on `backend`. */
export function expectPositions(fn: string, positions: Tensor, backend: Backend, B: number, S: number): void {
  positions.assertAlive(fn);
  if (positions.backend !== backend) throw new BackendError({ fn, expected: `positions on ${backend.info.name}`, got: `a tensor on ${positions.backend.info.name}` });
  const ok = positions.dtype === 'i32' && ((positions.rank === 2 && positions.shape[0] === B && positions.shape[1] === S) || (positions.rank === 1 && positions.shape[0] === S));
  if (!ok) throw new ShapeError({ fn, expected: `i32 positions [${B}, ${S}] or [${S}]`, got: `${positions.dtype} ${formatShape(positions.shape)}` });
}

/** Absolute positions [B·S] of S new tokens after `starts[b]` cached ones, each below maxSeqLen. */
export function startPositionsOf(fn: string, starts: readonly number[], S: number, maxSeqLen: number): Int32Array {
  const B = starts.length;
  const positions = new Int32Array(B * S);
  for (const [b, p] of starts.entries()) {
    if (!Number.isInteger(p) || p < 0) throw new ConfigError({ fn, expected: 'start positions that are integers ≥ 0', got: `${p} for sequence ${b}` });
    if (p + S > maxSeqLen) throw new CapacityError({ fn, expected: `positions below maxSeqLen ${maxSeqLen}`, got: `tokens ${p}..${p + S - 1} for sequence ${b}` });
    for (let i = 0; i < S; i++) positions[b * S + i] = p + i;
  }
  return positions;
}
