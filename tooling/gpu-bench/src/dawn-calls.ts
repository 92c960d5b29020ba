// What each WebGPU API call costs on the host through Dawn's Node binding (the `webgpu`
// package), on gpu.js' own device as the product path gets it. A decode step is a few dozen of
// these calls, so at one sequence their cost, not the GPU, sets the step time (BENCHMARKS.md,
// issue 13). Each line is the mean of 2000 calls after 200 warm-up calls, yielding to the event
// loop every 50 so Dawn can retire work; the GPU work itself is one workgroup per dispatch.
//
//   node dawn-calls.mjs            (bundled by scripts/bundle.sh)

/// <reference types="@webgpu/types" />
import { createBackend, isWebGpuHost } from '@attnkit/tensor-core';

const { backend } = await createBackend({ prefer: 'gpujs-webgpu' });
if (!isWebGpuHost(backend)) throw new Error(`no WebGPU device (got ${backend.info.name})`);
const device = backend.webgpu.device;
const code = `@group(0) @binding(0) var<uniform> P: vec4<u32>;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read> d: array<f32>;
@group(0) @binding(5) var<storage, read> e: array<f32>;
@group(0) @binding(6) var<storage, read> f: array<f32>;
@group(0) @binding(7) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(32) fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  if (id.x < P.x) { o[id.x] = a[id.x] + b[id.x] + c[id.x] + d[id.x] + e[id.x] + f[id.x]; }
}`;
const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code }), entryPoint: 'main' } });
const layout = pipeline.getBindGroupLayout(0);
const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
const uniform = device.createBuffer({ size: 256, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
const buffers = Array.from({ length: 7 }, () => device.createBuffer({ size: 1 << 20, usage }));
const [b0, b1, b2, b3, b4, b5] = buffers as [GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer, GPUBuffer];
const entries = [uniform, ...buffers].map((buffer, binding) => ({ binding, resource: { buffer } }));
const group = device.createBindGroup({ layout, entries });
const words = new Uint32Array(24);

const CALLS = 2000;
const BATCH = 50;
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));
async function time(name: string, call: (i: number) => void): Promise<void> {
  for (let i = 0; i < 200; i++) {
    call(i);
    if (i % BATCH === BATCH - 1) await yieldToLoop();
  }
  await device.queue.onSubmittedWorkDone();
  let spent = 0;
  for (let i = 0; i < CALLS; i += BATCH) {
    const t0 = performance.now();
    for (let j = i; j < i + BATCH; j++) call(j);
    spent += performance.now() - t0;
    await yieldToLoop();
  }
  await device.queue.onSubmittedWorkDone();
  console.log(`${name.padEnd(64)} ${((spent / CALLS) * 1000).toFixed(1).padStart(7)} µs`);
}
const pass = (encoder: GPUCommandEncoder, dispatches: number, bind: () => GPUBindGroup): void => {
  const compute = encoder.beginComputePass();
  for (let k = 0; k < dispatches; k++) {
    compute.setPipeline(pipeline);
    compute.setBindGroup(0, bind());
    compute.dispatchWorkgroups(1);
  }
  compute.end();
};

console.log(`Dawn API calls on ${backend.info.adapter}, node ${process.version}\n`);
await time('queue.writeBuffer (96 bytes)', () => device.queue.writeBuffer(uniform, 0, words));
await time('createBindGroup (8 entries)', () => device.createBindGroup({ layout, entries }));
await time('createBuffer (64 KiB; destroyed 64 calls later)', (() => {
  const live: GPUBuffer[] = [];
  return () => {
    live.push(device.createBuffer({ size: 65536, usage }));
    if (live.length > 64) live.shift()?.destroy();
  };
})());
await time('encoder + finish (nothing submitted)', () => void device.createCommandEncoder().finish());
await time('encoder + 1 copy + submit', () => {
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(b0, 0, b1, 0, 1024);
  device.queue.submit([encoder.finish()]);
});
await time('encoder + 3 copies + submit', () => {
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(b0, 0, b1, 0, 1024);
  encoder.copyBufferToBuffer(b2, 0, b3, 0, 1024);
  encoder.copyBufferToBuffer(b4, 0, b5, 0, 1024);
  device.queue.submit([encoder.finish()]);
});
await time('encoder + pass of 1 dispatch (bind group reused) + submit', () => {
  const encoder = device.createCommandEncoder();
  pass(encoder, 1, () => group);
  device.queue.submit([encoder.finish()]);
});
await time('encoder + pass of 4 dispatches (bind groups reused) + submit', () => {
  const encoder = device.createCommandEncoder();
  pass(encoder, 4, () => group);
  device.queue.submit([encoder.finish()]);
});
await time('encoder + pass of 4 dispatches (4 bind groups created) + submit', () => {
  const encoder = device.createCommandEncoder();
  pass(encoder, 4, () => device.createBindGroup({ layout, entries }));
  device.queue.submit([encoder.finish()]);
});
await time('… reused, with 2 copies before and 1 after (the NSA step shape)', () => {
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(b0, 0, b1, 0, 1024);
  encoder.copyBufferToBuffer(b2, 0, b3, 0, 1024);
  pass(encoder, 4, () => group);
  encoder.copyBufferToBuffer(b4, 0, b5, 0, 1024);
  device.queue.submit([encoder.finish()]);
});
uniform.destroy();
for (const b of buffers) b.destroy();
await backend.dispose();
