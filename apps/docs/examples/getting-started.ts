/* eslint-disable no-console -- an example prints what it computes */
// #region example
import { attention } from '@attnkit/attention-mha';
import { createBackend, tensor, zeros } from '@attnkit/tensor-core';

// The best backend this machine offers: WebGPU, WebGL, WebAssembly (through gpu.js), then
// plain CPU. `passedOver` says why the ones before it were not used.
const { backend, passedOver } = await createBackend();
console.log(`backend: ${backend.info.name} (passed over: ${passedOver.map((p) => p.name).join(', ') || 'none'})`);

// One sequence (B = 1) of S = 3 tokens, H = 2 heads of width D = 4, token-major [B, S, H, D].
// With q = 0 every score is equal, so each token averages the values it can see.
const q = zeros(backend, [1, 3, 2, 4]);
const k = tensor(backend, Array.from({ length: 24 }, (_, j) => Math.sin(j)), [1, 3, 2, 4]);
const v = tensor(backend, Array.from({ length: 24 }, (_, j) => j), [1, 3, 2, 4]); // v[t, h, d] = 8t + 4h + d

// Causal by default: token i sees tokens 0..i.
const { out } = await attention(q, k, v);
const o = await out.data(); // [1, 3, 2, 4]
console.log('token 2, head 0:', Array.from(o.subarray(16, 20))); // mean of v[0..2, 0] = [8, 9, 10, 11]

for (const t of [q, k, v, out]) t.dispose();
await backend.dispose();
// #endregion example
