import { GPU } from 'gpu.js';
const mode = process.argv[2];
if (mode === 'webgpu') {
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  globalThis.navigator = { gpu: create([]) };
}
const gpu = new GPU({ mode });
function dec(w, e) {
  // byte pair decode
  const word = w[e >> 1];
  const b = (word >> ((e & 1) * 8)) & 255;
  return b;
}
const k = gpu.createKernel(function (a, w, n) {
  const row = this.thread.y;
  const col = this.thread.x;
  let s = 0;
  for (let i = 0; i < n; i++) s += a[row * n + i];
  const e = row * this.output.x + col;
  const word = w[e >> 1];
  const b = (word >> ((e & 1) * 8)) & 255;
  return s * 1000 + b;
}, { output: [3, 2], pipeline: true, immutable: true, dynamicOutput: true, dynamicArguments: true, asyncMode: true, loopMaxIterations: 1 << 30,
  argumentTypes: { a: 'Array', w: 'Array', n: 'Integer' } });
let t0 = performance.now();
const w = new Uint16Array([1 + 256 * 2, 3 + 256 * 4, 5 + 256 * 255]);
const r = await k(new Float32Array(8).fill(1), w, 4);
console.log(mode, 'first', (performance.now() - t0).toFixed(1), r.constructor.name, r.toArray ? await r.toArray() : r);
k.setOutput([2, 3]);
const r2 = await k(new Float32Array(12).fill(2), w, 4);
console.log(r2.toArray ? await r2.toArray() : r2, Array.isArray(r2) && r2[0].buffer.byteLength);
try { console.log(k.kernel?.constructor?.name, k.kernel?.fallbackReason, k.kernel?._lastRunPath); } catch (e) {}
gpu.destroy();
