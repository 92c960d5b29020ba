/* eslint-disable no-console -- an example prints what it computes */
// #region example
import { attention } from '@attnkit/attention-mha';
import { createBackend, tensor, zeros } from '@attnkit/tensor-core';

// The best backend this machine offers: WebGPU, WebGL, WebAssembly
// (through gpu.js), then plain CPU. `passedOver` says why others were not.
const { backend, passedOver } = await createBackend();
const skipped = passedOver.map((p) => p.name).join(', ') || 'none';
console.log(`backend: ${backend.info.name} (passed over: ${skipped})`);

// One sequence (B = 1) of S = 3 tokens, H = 2 heads of width D = 4,
// token-major [B, S, H, D]. With q = 0 every score is equal, so each
// token averages the values it can see.
const ramp = (n: number, f: (j: number) => number): number[] =>
  Array.from({ length: n }, (_, j) => f(j));
const q = zeros(backend, [1, 3, 2, 4]);
const k = tensor(backend, ramp(24, Math.sin), [1, 3, 2, 4]);
const v = tensor(backend, ramp(24, (j) => j), [1, 3, 2, 4]); // 8t + 4h + d

// Causal by default: token i sees tokens 0..i.
const { out } = await attention(q, k, v);
const o = await out.data(); // [1, 3, 2, 4]
// token 2, head 0 averages v[0..2, 0]: [8, 9, 10, 11]
console.log('token 2, head 0:', Array.from(o.subarray(16, 20)));

for (const t of [q, k, v, out]) t.dispose();
await backend.dispose();
// #endregion example
