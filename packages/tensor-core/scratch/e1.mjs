import { GPU, WebGPUContext, WebGPUBufferResult } from 'gpu.js';
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
globalThis.navigator = { gpu: create([]) };
let t0 = performance.now();
const ctx = await WebGPUContext.acquire();
console.log('acquire', performance.now() - t0, ctx.adapter.info, ctx.device.limits.maxStorageBufferBindingSize, ctx.device.limits.maxBufferSize);
const gpu = new GPU({ mode: 'webgpu' });
const k = gpu.createKernel(function (a, n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[this.thread.x * n + i];
  return s;
}, { output: [4], pipeline: true, immutable: true, dynamicOutput: true, dynamicArguments: true, argumentTypes: { a: 'Array', n: 'Integer' } });
t0 = performance.now();
const r = await k(new Float32Array(16).fill(1), 4);
console.log('first call', performance.now() - t0, r.constructor.name, await r.toArray());
console.log(k.compiledSource);
// own buffer
const dev = ctx.device;
const buf = dev.createBuffer({ size: 4 * 32, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
dev.queue.writeBuffer(buf, 0, new Float32Array(32).fill(2));
const h = new WebGPUBufferResult({ buffer: buf, output: [32], context: ctx, kernel: k });
k.setOutput([8]);
t0 = performance.now();
const r2 = await k(h, 4);
console.log('second', performance.now() - t0, await r2.toArray(), r === r2, r.buffer === r2.buffer);
gpu.destroy();
