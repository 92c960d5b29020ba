// In-place row copies on WebGPU, in hand-written WGSL: gpu.js kernels only ever write a fresh
// output, but appending to a cache must cost the rows written, not the cache. A "run" set is
// `rows` runs of `rowLen` elements; run k lands at element base + k·stride (WriteSlice) or at
// idx[k]·rowLen + base (ScatterRows). Each dispatch writes one chunk [cs, ce) of the
// destination. Byte-pair destinations are written a word at a time, and when two runs could
// share a word the runs are written in two passes by parity, so no word has two writers.
/// <reference types="@webgpu/types" />

import type { GpujsBackend } from './backend.js';
import type { GpuArray } from './device.js';

export interface RowRuns {
  readonly rows: number;
  readonly rowLen: number;
  readonly base: number;
  readonly stride: number;
  /** f32 row indices (ScatterRows), or null for affine runs. */
  readonly indices: GpuArray | null;
}

const PARAMS = `struct Params {
  rows : u32, rowLen : u32, base : u32, stride : u32,
  indexed : u32, cs : u32, ce : u32, parity : u32,
  twoPhase : u32, threads : u32, rowSpan : u32, pad : u32,
}
@group(0) @binding(0) var<uniform> p : Params;
@group(0) @binding(1) var<storage, read> src : array<f32>;
@group(0) @binding(2) var<storage, read> idx : array<f32>;
@group(0) @binding(3) var<storage, read_write> dst : array<f32>;
fn rowStart(k : u32) -> u32 {
  if (p.indexed == 1u) { return u32(idx[k]) * p.rowLen + p.base; }
  return p.base + k * p.stride;
}
fn rowKey(k : u32) -> u32 {
  if (p.indexed == 1u) { return u32(idx[k]); }
  return k;
}`;

// One thread per element of the runs.
const VALUE_SHADER = `${PARAMS}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid : vec3<u32>, @builtin(num_workgroups) groups : vec3<u32>) {
  let t = gid.x + gid.y * groups.x * 64u;
  if (t >= p.threads) { return; }
  let k = t / p.rowLen;
  let e = rowStart(k) + (t - k * p.rowLen);
  if (e < p.cs || e >= p.ce) { return; }
  dst[e - p.cs] = src[t];
}`;

// One thread per destination word a run touches (rowSpan words per run). Byte h of word w is
// element 2w + h; bytes outside the run keep the destination's value.
const BYTEPAIR_SHADER = `${PARAMS}
fn srcByte(s : u32) -> u32 {
  return (u32(src[s >> 1u]) >> ((s & 1u) * 8u)) & 255u;
}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid : vec3<u32>, @builtin(num_workgroups) groups : vec3<u32>) {
  let t = gid.x + gid.y * groups.x * 64u;
  if (t >= p.threads) { return; }
  let k = t / p.rowSpan;
  if (p.twoPhase == 1u && (rowKey(k) & 1u) != p.parity) { return; }
  let start = rowStart(k);
  let w = (start >> 1u) + (t - k * p.rowSpan);
  if (2u * w >= start + p.rowLen) { return; }
  if (2u * w < p.cs || 2u * w >= p.ce) { return; }
  let old = u32(dst[w - (p.cs >> 1u)]);
  var lo = old & 255u;
  var hi = (old >> 8u) & 255u;
  if (2u * w >= start) { lo = srcByte(k * p.rowLen + 2u * w - start); }
  if (2u * w + 1u >= start && 2u * w + 1u < start + p.rowLen) { hi = srcByte(k * p.rowLen + 2u * w + 1u - start); }
  dst[w - (p.cs >> 1u)] = f32(lo + 256u * hi);
}`;

interface CopyPipelines {
  readonly value: GPUComputePipeline;
  readonly bytepair: GPUComputePipeline;
}

function pipelines(backend: GpujsBackend, device: GPUDevice): CopyPipelines {
  return backend.cached('attnkit:webgpu-row-copy', () => ({
    value: device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: VALUE_SHADER }), entryPoint: 'main' } }),
    bytepair: device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: BYTEPAIR_SHADER }), entryPoint: 'main' } }),
  }));
}

const USAGE_UNIFORM = 0x0040;
const USAGE_COPY_DST = 0x0008;

/**
 * Copies runs of `src` (value words, or byte-pair words when `bytepair`) into the destination
 * chunk `dst` holding elements [cs, cs + length).
 */
export function copyRunsWebGpu(
  backend: GpujsBackend,
  device: GPUDevice,
  src: GpuArray,
  dst: GpuArray,
  cs: number,
  length: number,
  runs: RowRuns,
  bytepair: boolean,
  placeholder: GpuArray,
): void {
  if (runs.rows * runs.rowLen === 0) return;
  const { value, bytepair: packed } = pipelines(backend, device);
  const rowSpan = (runs.rowLen >> 1) + 1;
  const threads = bytepair ? runs.rows * rowSpan : runs.rows * runs.rowLen;
  // Runs that start at an odd element or have odd length can share a word with the next run.
  const aligned = runs.rowLen % 2 === 0 && runs.base % 2 === 0 && (runs.indices !== null || runs.stride % 2 === 0);
  const phases = bytepair && !aligned ? [0, 1] : [0];
  const pipeline = bytepair ? packed : value;
  const groups = Math.ceil(threads / 64);
  const gx = Math.min(groups, device.limits.maxComputeWorkgroupsPerDimension);
  const gy = Math.ceil(groups / gx);
  const encoder = device.createCommandEncoder();
  const uniforms: GPUBuffer[] = [];
  for (const parity of phases) {
    const params = new Uint32Array([
      runs.rows,
      runs.rowLen,
      runs.base,
      runs.stride,
      runs.indices ? 1 : 0,
      cs,
      cs + length,
      parity,
      phases.length === 2 ? 1 : 0,
      threads,
      rowSpan,
      0,
    ]);
    const uniform = device.createBuffer({ size: params.byteLength, usage: USAGE_UNIFORM | USAGE_COPY_DST });
    device.queue.writeBuffer(uniform, 0, params);
    uniforms.push(uniform);
    const bind = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: uniform } },
        { binding: 1, resource: { buffer: src.buffer } },
        { binding: 2, resource: { buffer: (runs.indices ?? placeholder).buffer } },
        { binding: 3, resource: { buffer: dst.buffer } },
      ],
    });
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(gx, gy);
    pass.end();
  }
  device.queue.submit([encoder.finish()]);
  for (const u of uniforms) u.destroy();
}
