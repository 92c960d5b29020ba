// The README's example, verbatim apart from the assertions: it must keep running.
import { createBackend, tensor } from '@attnkit/tensor-core';
import { NativeSparseAttention } from '@attnkit/attention-nsa';
import { expect, it } from 'vitest';

it('runs the README example', async () => {
  const { backend } = await createBackend({ prefer: 'cpu' });
  const random = (shape: number[]) =>
    tensor(backend, Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.random() - 0.5), shape);

  const [B, T, Hq, Hkv, D, X] = [1, 512, 8, 2, 64, 256];
  const nsa = new NativeSparseAttention(
    { nHeads: Hq, nKvHeads: Hkv, headDim: D, gateDim: X, nSelected: 8, window: 128 }, // l 32, d 16, l′ 64 by default
    { gateWeight: random([3 * Hq, X]), gateBias: random([3 * Hq]) },
  );
  const q = random([B, T, Hq, D]);
  const k = random([B, T, Hkv, D]);
  const v = random([B, T, Hkv, D]);
  const x = random([B, T, X]);

  const { out, stages } = await nsa.forward(q, k, v, x, { returnStages: true });
  expect(out.shape).toEqual([1, 512, 8, 64]);
  expect(stages?.selectedBlocks.shape).toEqual([1, 512, 2, 8]);
  await backend.dispose();
});
