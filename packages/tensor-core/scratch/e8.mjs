import { GPU } from 'gpu.js';
const { create, globals } = await import('webgpu');
Object.assign(globalThis, globals);
globalThis.navigator = { gpu: create([]) };
const gpu = new GPU({ mode: 'webgpu' });
const k = gpu.createKernel(function (x) {
  const v = x[this.thread.x];
  const w = x[this.thread.x + 1];
  let r = 0;
  if (v !== v) r += 1;
  if (v > w) r += 10;
  if (v === v) r += 100;
  if (!(v >= -3.4e38) && !(v < -3.4e38)) r += 1000;
  if (v < w) r += 10000;
  return r;
}, { output: [3], argumentTypes: { x: 'Array' } });
console.log(await k(new Float32Array([NaN, 1, 2, NaN])));
console.log(k.kernel.compiledSource.split('fn main')[1]);
