import * as tc from '../src/index.js';
const { backend } = await tc.createBackend({ prefer: process.argv[2] as 'gpujs-cpu' });
const cpu = new tc.CpuBackend();
for (const dt of ['int8', 'fp8e4m3'] as const) {
  for (const b of [cpu, backend]) {
    const x = tc.tensor(b, [1, 0, 0, 0, 0, 0, 1, 0, 0, 0], [2, 5]);
    const w = await tc.cast(tc.tensor(b, Float32Array.from({ length: 15 }, (_, i) => i / 10), [3, 5]), dt, { blockSize: 5 });
    console.log(dt, b.info.name, Array.from(await w.data()).map((v) => v.toFixed(3)).join(' '));
    console.log('  linear', Array.from(await (await tc.linear(x, w)).data()).map((v) => v.toFixed(3)).join(' '));
  }
}
await backend.dispose();
