// The Hadamard rotation DeepSeek-V3.2 applies to the indexer's queries and keys before fp8
// quantisation (`rotate_activation` = fast_hadamard_transform with scale D^−1/2). Sylvester
// order: H_1 = [1], H_2n = [[H_n, H_n], [H_n, −H_n]], so entry (i, j) is (−1)^popcount(i & j).
// Scaled by D^−1/2 it is orthonormal and symmetric: (Hq)·(Hk) = q·k, so exact scores do not
// change; the rotation only spreads outlier channels across the block before quantisation.

import { type Backend, ConfigError, type Tensor, tensor } from '@attnkit/tensor-core';

/** The D×D Sylvester Hadamard matrix times D^−1/2, row-major (D a power of two). */
export function hadamardMatrix(D: number): Float32Array {
  if (!Number.isInteger(D) || D < 1 || (D & (D - 1)) !== 0) {
    throw new ConfigError({ fn: 'hadamardMatrix', expected: 'a power-of-two size (Sylvester construction)', got: String(D) });
  }
  const scale = D ** -0.5;
  const m = new Float32Array(D * D);
  for (let i = 0; i < D; i++) {
    for (let j = 0; j < D; j++) m[i * D + j] = popcount(i & j) % 2 === 0 ? scale : -scale;
  }
  return m;
}

/** f32 [D, D]: right-multiplying rows by it rotates them (the matrix is symmetric). */
export function hadamardTensor(backend: Backend, D: number): Tensor {
  return tensor(backend, hadamardMatrix(D), [D, D]);
}

function popcount(v: number): number {
  let n = 0;
  for (let x = v; x !== 0; x &= x - 1) n++;
  return n;
}
