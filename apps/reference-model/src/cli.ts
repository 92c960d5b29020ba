#!/usr/bin/env -S npx tsx
// attnkit demo CLI. Until the reference model lands (issue 9) the demo shows the backend
// selection and one RoPE rotation on it, so the quick start runs end to end.
import { createBackend, ropeInvFreq, rope, tensor } from '@attnkit/tensor-core';

const command = process.argv[2] ?? 'demo';
if (command !== 'demo') {
  console.error(`unknown command "${command}"; try: demo`);
  process.exit(2);
}

const { backend, passedOver } = await createBackend();
console.log(`backend: ${backend.info.name} (${backend.info.adapter})`);
for (const p of passedOver) console.log(`  passed over ${p.name}: ${p.reason}`);
const dim = 8;
using x = tensor(backend, Float32Array.from({ length: 2 * dim }, (_, i) => (i % dim === 0 ? 1 : 0)), [2, 1, dim]);
using positions = tensor(backend, [0, 1], [2], { dtype: 'i32' });
using invFreq = tensor(backend, ropeInvFreq({ dim }), [dim / 2]);
using y = await rope(x, positions, invFreq, { layout: 'interleaved' });
const values = await y.data();
console.log(`RoPE of e0 at positions 0 and 1: [${Array.from(values.subarray(0, 2), (v) => v.toFixed(4)).join(', ')}] and [${Array.from(values.subarray(dim, dim + 2), (v) => v.toFixed(4)).join(', ')}]`);
await backend.dispose();
