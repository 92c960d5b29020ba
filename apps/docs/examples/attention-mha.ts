/* eslint-disable no-console -- an example prints what it computes */
// #region example
import { attention } from '@attnkit/attention-mha';
import { createBackend, slice, tensor } from '@attnkit/tensor-core';

const { backend } = await createBackend();
const random = (n: number): number[] => Array.from({ length: n }, (_, i) => Math.sin(1.7 * i + 0.3));

// GQA: Hq = 4 query heads share Hkv = 2 kv heads (query head h reads kv head ⌊h / 2⌋).
const [S, T, Hq, Hkv, D] = [5, 5, 4, 2, 8];
const q = tensor(backend, random(S * Hq * D), [1, S, Hq, D]);
const k = tensor(backend, random(T * Hkv * D).map((x) => x * 0.5), [1, T, Hkv, D]);
const v = tensor(backend, random(T * Hkv * D).reverse(), [1, T, Hkv, D]);

// A causal prefill over all 5 tokens, with the log-sum-exp of every row …
const prefill = await attention(q, k, v, { returnLse: true });

// … and a decode step: only the last query, over the same 5 keys. The causal mask is aligned
// bottom-right (query i of S sits at position T − S + i), so the lone query sees every key and
// reproduces the prefill's last row exactly. PyTorch's `is_causal=True` would let it see key 0 only.
const lastQuery = await slice(q, [0, S - 1, 0, 0], [1, 1, Hq, D]);
const decode = await attention(lastQuery, k, v);

const full = await prefill.out.data(); // [1, S, Hq, D]
const step = await decode.out.data(); // [1, 1, Hq, D]
const lastRow = full.subarray((S - 1) * Hq * D);
console.log('decode = last prefill row:', step.every((x, i) => Math.abs(x - (lastRow[i] as number)) < 1e-6));
console.log('lse of token 0 (sees only itself):', (await prefill.lse?.data())?.[0]);
console.log('ran:', prefill.dispatch.implementation);

// A sliding window of 2 keys: token 4 sees tokens 3 and 4 only.
const windowed = await attention(q, k, v, { window: 2 });
console.log('window output shape:', windowed.out.shape); // [1, 5, 4, 8]

for (const t of [q, k, v, prefill.out, prefill.lse, lastQuery, decode.out, windowed.out]) t?.dispose();
await backend.dispose();
// #endregion example
