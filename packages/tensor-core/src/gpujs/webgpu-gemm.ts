// The WebGPU fast path of MatMul and Linear: a hand-written WGSL GEMM over 16×16 output tiles
// staged through workgroup memory, C[z, m, n] = Σ_k A[z·a1 + m·aM + k·aK] · B[z·b1 + k·bK + n·bN]
// (+ bias[n]). Strides cover both transposes and one broadcast batch level. gpu.js cannot use
// workgroup memory, and its generated loops run ~4× slower than this on lavapipe; other cases
// (split operands, two batch levels, quantised weights) take the gpu.js kernels.
/// <reference types="@webgpu/types" />

import type { GpujsBackend } from './backend.js';
import type { GpuArray } from './device.js';

const TILE = 16;

const GEMM_SHADER = `struct Params {
  M : u32, N : u32, K : u32, batch : u32,
  aM : u32, aK : u32, bK : u32, bN : u32,
  a1 : u32, b1 : u32, hasBias : u32, pad : u32,
}
@group(0) @binding(0) var<uniform> p : Params;
@group(0) @binding(1) var<storage, read> a : array<f32>;
@group(0) @binding(2) var<storage, read> b : array<f32>;
@group(0) @binding(3) var<storage, read> bias : array<f32>;
@group(0) @binding(4) var<storage, read_write> c : array<f32>;
var<workgroup> tileA : array<array<f32, ${TILE}>, ${TILE}>;
var<workgroup> tileB : array<array<f32, ${TILE}>, ${TILE}>;
@compute @workgroup_size(${TILE}, ${TILE})
fn main(@builtin(workgroup_id) wg : vec3<u32>, @builtin(local_invocation_id) l : vec3<u32>) {
  let z = wg.z;
  let m = wg.y * ${TILE}u + l.y;
  let n = wg.x * ${TILE}u + l.x;
  var sum = 0.0;
  for (var k0 = 0u; k0 < p.K; k0 += ${TILE}u) {
    // A[m, k0 + l.x] and B[k0 + l.y, n] into the tiles; zeros outside the matrices
    let ka = k0 + l.x;
    var av = 0.0;
    if (m < p.M && ka < p.K) { av = a[z * p.a1 + m * p.aM + ka * p.aK]; }
    tileA[l.y][l.x] = av;
    let kb = k0 + l.y;
    var bv = 0.0;
    if (n < p.N && kb < p.K) { bv = b[z * p.b1 + kb * p.bK + n * p.bN]; }
    tileB[l.y][l.x] = bv;
    workgroupBarrier();
    for (var k = 0u; k < ${TILE}u; k++) { sum += tileA[l.y][k] * tileB[k][l.x]; }
    workgroupBarrier();
  }
  if (m < p.M && n < p.N && z < p.batch) {
    if (p.hasBias == 1u) { sum += bias[n]; }
    c[(z * p.M + m) * p.N + n] = sum;
  }
}`;

export interface GemmOperands {
  readonly a: GpuArray;
  readonly b: GpuArray;
  readonly bias: GpuArray | null;
  readonly M: number;
  readonly N: number;
  readonly K: number;
  readonly batch: number;
  /** Element strides: A[z·a1 + m·aM + k·aK], B[z·b1 + k·bK + n·bN]. */
  readonly aM: number;
  readonly aK: number;
  readonly bK: number;
  readonly bN: number;
  readonly a1: number;
  readonly b1: number;
}

const USAGE_UNIFORM = 0x0040;
const USAGE_COPY_DST = 0x0008;

/** Whether the WGSL GEMM takes these sizes (one dispatch, 32-bit indices). */
export function gemmFits(device: GPUDevice, M: number, N: number, batch: number, elements: number): boolean {
  const max = device.limits.maxComputeWorkgroupsPerDimension;
  return Math.ceil(N / TILE) <= max && Math.ceil(M / TILE) <= max && batch <= max && elements < 2 ** 32;
}

/** Enqueues C = A·B (+ bias) into `out` (batch·M·N f32 words). */
export function gemmWebGpu(backend: GpujsBackend, device: GPUDevice, o: GemmOperands, out: GpuArray, placeholder: GpuArray): void {
  const pipeline = backend.cached('attnkit:webgpu-gemm', () =>
    device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: GEMM_SHADER }), entryPoint: 'main' } }),
  );
  const params = new Uint32Array([o.M, o.N, o.K, o.batch, o.aM, o.aK, o.bK, o.bN, o.a1, o.b1, o.bias ? 1 : 0, 0]);
  const uniform = device.createBuffer({ size: params.byteLength, usage: USAGE_UNIFORM | USAGE_COPY_DST });
  device.queue.writeBuffer(uniform, 0, params);
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [
      { binding: 0, resource: { buffer: uniform } },
      { binding: 1, resource: { buffer: o.a.buffer } },
      { binding: 2, resource: { buffer: o.b.buffer } },
      { binding: 3, resource: { buffer: (o.bias ?? placeholder).buffer } },
      { binding: 4, resource: { buffer: out.buffer } },
    ],
  });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(Math.ceil(o.N / TILE), Math.ceil(o.M / TILE), o.batch);
  pass.end();
  device.queue.submit([encoder.finish()]);
  uniform.destroy();
}
