// The SIMD indexer scores against a float64 evaluation of I[t] = Σ_j w_j·ReLU(q_j·k_t): odd and
// even head counts, runs that are and are not whole blocks of 4 keys, keys in place (resident)
// or copied in, one thread or split over two; NaN in a key or a weight as the TypeScript kernel
// treats it (ReLU maps a NaN dot product to 0; a NaN weight makes the score NaN).
import { CpuBackend, tensor } from '@attnkit/tensor-core';
import { SeededRandom } from '@attnkit/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { scoreRun } from './cpu-scores.js';

const rng = new SeededRandom(5);

function reference(q: Float32Array, w: Float32Array, heads: number, dim: number, keys: Float32Array, row0: number, n: number): Float64Array {
  const out = new Float64Array(n);
  for (let t = 0; t < n; t++) {
    let score = 0;
    for (let j = 0; j < heads; j++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += (q[j * dim + d] as number) * (keys[(row0 + t) * dim + d] as number);
      score += (w[j] as number) * (dot > 0 ? dot : 0);
    }
    out[t] = score;
  }
  return out;
}

describe('SIMD indexer scores', () => {
  const threaded = new CpuBackend({ threads: 2 });
  const single = new CpuBackend({ threads: 1 });
  afterAll(async () => {
    await threaded.dispose();
    await single.dispose();
  });

  for (const [heads, dim, n, rows] of [
    [16, 32, 4, 10],
    [3, 8, 7, 9],
    [16, 32, 1001, 1100],
    [64, 128, 300, 300],
    [5, 4, 4096, 70000], // 1.1 MB of keys: resident, split over the threads
    [6, 256, 203, 210], // the longest unrolled D_I
    [4, 260, 101, 120], // past UNROLL_MAX_DIM: the loop over D_I
  ] as const) {
    for (const backend of [threaded, single]) {
      it(`${heads} heads × ${dim}, ${n} keys of ${rows} (${backend === threaded ? 'two threads' : 'one thread'})`, async () => {
        const q = rng.normalArray(heads * dim);
        const w = rng.normalArray(heads, 0.5);
        const host = rng.normalArray(rows * dim);
        // as the kernel sees a cache: the backend's own storage (resident when ≥ 1 MiB)
        using keysTensor = tensor(backend, host, [rows, dim]);
        const keys = backend.view(keysTensor);
        const row0 = rows - n;
        const before = backend.wasm?.liveBytes() ?? 0;
        const got = await scoreRun(backend, q, 0, w, 0, heads, dim, keys, row0, n);
        expect(got).not.toBeNull();
        const row = Float32Array.from(got?.row ?? []);
        got?.release();
        expect(backend.wasm?.liveBytes(), 'every region released').toBe(before);
        const want = reference(q, w, heads, dim, host, row0, n);
        // f32 sums of `dim` products per head, then `heads` weighted terms: bound by their magnitudes
        const bound = (t: number): number => {
          let m = 0;
          for (let j = 0; j < heads; j++) {
            let a = 0;
            for (let d = 0; d < dim; d++) a += Math.abs((q[j * dim + d] as number) * (host[(row0 + t) * dim + d] as number));
            m += Math.abs(w[j] as number) * a;
          }
          return (dim + heads + 2) * 2 ** -24 * m;
        };
        for (let t = 0; t < n; t++) expect(Math.abs((row[t] as number) - (want[t] as number)), `key ${t}`).toBeLessThanOrEqual(bound(t));
      });
    }
  }

  it('maps a NaN dot product to 0 (ReLU) and carries a NaN weight, as the TypeScript kernel', async () => {
    const [heads, dim, n] = [4, 8, 9];
    const q = rng.normalArray(heads * dim);
    const keys = rng.normalArray(n * dim);
    keys[3 * dim + 2] = Number.NaN; // key 3: every dot product NaN → ReLU 0
    const w = Float32Array.from([0.5, -0.25, 1, 2]);
    const got = await scoreRun(single, q, 0, w, 0, heads, dim, keys, 0, n);
    const row = Float32Array.from(got?.row ?? []);
    got?.release();
    expect(row[3]).toBe(0);
    expect(row.every((v) => !Number.isNaN(v))).toBe(true);
    w[1] = Number.NaN;
    const withNaN = await scoreRun(single, q, 0, w, 0, heads, dim, keys, 0, n);
    expect(Array.from(withNaN?.row ?? [], Number.isNaN)).toEqual(new Array<boolean>(n).fill(true));
    withNaN?.release();
  });

  it('declines runs shorter than one block and head dims that are not whole vectors', async () => {
    expect(await scoreRun(single, new Float32Array(8), 0, new Float32Array(1), 0, 1, 8, new Float32Array(24), 0, 3)).toBeNull();
    expect(await scoreRun(single, new Float32Array(6), 0, new Float32Array(1), 0, 1, 6, new Float32Array(60), 0, 10)).toBeNull();
    expect(await scoreRun(new CpuBackend({ simd: false }), new Float32Array(8), 0, new Float32Array(1), 0, 1, 8, new Float32Array(80), 0, 10)).toBeNull();
  });
});
