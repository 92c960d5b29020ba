import { GPU } from 'gpu.js';
const mode = process.argv[2];
if (mode === 'webgpu') {
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  globalThis.navigator = { gpu: create([]) };
}
const gpu = new GPU({ mode });
function readPair(w, e) {
  return (w[e >> 1] >> ((e & 1) * 8)) & 255;
}
const k = gpu.createKernel(function (a, w, n, m) {
  const base = n * m;           // Integer * Integer
  let idx = this.thread.x + base;
  idx = idx + 1;
  const t = Math.min(idx, n);
  const q = Math.max(0, n - this.thread.x);
  const f = a[this.thread.x];
  const c = (w[this.thread.x >> 1] >> ((this.thread.x & 1) * 8)) & 255; const tb = this.constants.tab[c & 3];
  return base + idx + t + q + f * 0 + c * 1000 + tb * 100000;
}, { output: [3], pipeline: false, dynamicOutput: true, dynamicArguments: true, asyncMode: true, loopMaxIterations: 1 << 30,
  argumentTypes: { a: 'Array', w: 'Array', n: 'Integer', m: 'Integer' }, constants: { tab: new Float32Array([10,20,30,40]) } });
try {
  const r = await k(new Float32Array(8).fill(1), new Float32Array([1 + 256 * 2, 3 + 256 * 4]), 4, 3);
  console.log(mode, r);
  if (mode === 'webgpu') console.log(k.kernel.compiledSource);
} catch (e) { console.log(mode, 'ERR', e.message.slice(0, 2000)); }
gpu.destroy();
