import { GPU } from 'gpu.js';
const mode = process.argv[2];
if (mode === 'webgpu') {
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  globalThis.navigator = { gpu: create([]) };
}
const gpu = new GPU({ mode });
const k = gpu.createKernel(function (a, n, m) {
  const base = n * m;
  let idx = this.thread.x + base;
  let s = 0;
  for (let k = base; k < base + n; k++) { s += a[k - base]; }
  let acc = 0.5;
  acc += 1;
  return idx + s + acc;
}, { output: [3], strictIntegers: true, asyncMode: true, loopMaxIterations: 1 << 30,
  argumentTypes: { a: 'Array', n: 'Integer', m: 'Integer' } });
try {
  const r = await k(new Float32Array(8).fill(1), 4, 3);
  console.log(mode, r);
  if (mode === 'webgpu') console.log(k.kernel.compiledSource.split('fn main')[1]);
} catch (e) { console.log(mode, 'ERR', e.message.slice(0, 2000)); }
gpu.destroy();
