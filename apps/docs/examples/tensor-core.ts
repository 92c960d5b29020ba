/* eslint-disable no-console -- an example prints what it computes */
// #region example
import { ShapeError, arange, createBackend, matmul, quantize, rope, ropeInvFreq, softmax, tensor } from '@attnkit/tensor-core';

const { backend } = await createBackend({ prefer: 'cpu' });

// matmul with a transposed right-hand side: scores = q · kᵀ, [S, D] · [T, D]ᵀ → [S, T]
const q = tensor(backend, [1, 0, 0, 1], [2, 2]);
const k = tensor(backend, [1, 0, 0, 1, 1, 1], [3, 2]);
const scores = await matmul(q, k, { transposeB: true });
console.log('scores', Array.from(await scores.data())); // [1, 0, 1, 0, 1, 1]

// softmax(scale·x + mask): the additive mask hides key 2 from query 0
const mask = tensor(backend, [0, 0, -Infinity, 0, 0, 0], [2, 3]);
const p = await softmax(scores, { scale: 1, mask });
console.log('row 0 sums to', (await p.data()).subarray(0, 3).reduce((a, b) => a + b, 0).toFixed(4)); // 1.0000

// RoPE, interleaved pairs (MLA's layout) at positions 0..2, θ = 10000
const x = tensor(backend, Array.from({ length: 3 * 1 * 4 }, () => 1), [3, 1, 4]); // [S, H, D]
const invFreq = tensor(backend, ropeInvFreq({ dim: 4 }), [2]);
const positions = arange(backend, 0, 3);
const rotated = await rope(x, positions, invFreq, { layout: 'interleaved' });
console.log('position 0 is unrotated:', Array.from((await rotated.data()).subarray(0, 4))); // [1, 1, 1, 1]

// fp8 (e4m3) storage with one f32 scale per 128 values, as DeepSeek-V3.2 caches its latent
const latent = tensor(backend, Array.from({ length: 512 }, (_, i) => Math.cos(i)), [1, 512]);
const before = backend.memory().bytesAllocated;
const fp8 = await quantize(latent, 'fp8e4m3', { blockSize: 128 });
console.log('fp8 bytes:', backend.memory().bytesAllocated - before); // 512 codes + 4 f32 scales = 528

// Bad input throws a named error that says what was expected and what came
const column = tensor(backend, [1, 2, 3], [3, 1]);
try {
  await matmul(q, column);
} catch (error) {
  if (error instanceof ShapeError) console.log(error.message); // [matmul] expected inner dimensions to match …, got 2 and 3
}

for (const t of [q, k, scores, mask, p, x, invFreq, positions, rotated, latent, fp8, column]) t.dispose();
console.log('live tensors after dispose:', backend.memory().liveTensors); // 0
await backend.dispose();
// #endregion example
