import { CpuBackend, tensor, transpose } from '@attnkit/tensor-core';
import { describe, expect, it } from 'vitest';
import { permute } from './layout.js';

describe('permute', () => {
  const backend = new CpuBackend();
  const cases: [number[], number[]][] = [
    [[2, 1, 3], [1, 0, 2]], // only a size-1 axis moves: a reshape
    [[1, 4, 1, 5], [0, 2, 1, 3]],
    [[2, 3, 4], [0, 2, 1]], // a real transpose
    [[2, 1, 3, 2], [3, 1, 2, 0]],
  ];
  for (const [shape, perm] of cases) {
    it(`equals transpose for ${JSON.stringify(shape)} by ${JSON.stringify(perm)}`, async () => {
      const n = shape.reduce((a, b) => a * b, 1);
      using x = tensor(backend, Float32Array.from({ length: n }, (_, i) => i), shape);
      using a = await permute(x, perm);
      using b = await transpose(x, perm);
      expect(a.shape).toEqual(b.shape);
      expect(Array.from(await a.data())).toEqual(Array.from(await b.data()));
    });
  }
});
