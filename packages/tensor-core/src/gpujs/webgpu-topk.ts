// The WebGPU fast path of TopK: one workgroup per row, one dispatch, where the gpu.js bitonic
// sort needs log2(P)·(log2(P)+1)/2 launches (136 for a 64K-key row, each ~0.1 ms of host time
// through Dawn). It finds the k-th largest key by radix select (four 8-bit histogram passes over
// the row in workgroup atomics), gathers the keys above it plus the lowest-indexed keys equal to
// it, and sorts those k in workgroup memory with a bitonic network. Same total order as the
// reference: larger first, equal values by lower index (−0 equals +0), NaN ranked as −∞.
/// <reference types="@webgpu/types" />

import type { GpujsBackend } from './backend.js';
import type { GpuArray } from './device.js';

const THREADS = 256;

/** Sorted candidates per row held in workgroup memory: the largest k this path takes. */
export const WEBGPU_TOPK_MAX_K = 2048;

function topKShader(P: number): string {
  return `struct Params { rows: u32, N: u32, k: u32, pad: u32 };
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> values: array<f32>;
@group(0) @binding(3) var<storage, read_write> indices: array<f32>;  // i32 tensors hold f32 words
var<workgroup> hist: array<atomic<u32>, 256>;
var<workgroup> scan: array<u32, ${THREADS}>;
var<workgroup> chosen: array<u32, 2>;        // the k-th key's digits so far, keys still to take
var<workgroup> slot: atomic<u32>;
var<workgroup> candKey: array<u32, ${P}>;
var<workgroup> candIndex: array<u32, ${P}>;

// An order-preserving u32 of a value: larger value, larger key; both zeros one key; NaN the
// key of −∞ (ranked as −∞, ties by index). Tested on the bits: shader compilers may fold a
// 'v != v' test away.
fn sortKey(v: f32) -> u32 {
  let raw = bitcast<u32>(v);
  if ((raw & 0x7f800000u) == 0x7f800000u && (raw & 0x007fffffu) != 0u) { return 0x007fffffu; }
  let bits = select(raw, 0u, (raw & 0x7fffffffu) == 0u);
  return select(bits | 0x80000000u, ~bits, (bits & 0x80000000u) != 0u);
}

// Candidate a ranks before candidate b: larger key first, then lower index.
fn before(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
  return ka > kb || (ka == kb && ia < ib);
}

@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let row = wg.x + wg.y * 65535u;
  if (row >= p.rows) { return; }  // uniform across the workgroup
  let base = row * p.N;
  let per = (p.N + ${THREADS - 1}u) / ${THREADS}u;
  let lo = min(li * per, p.N);    // this invocation's contiguous slice [lo, hi) of the row
  let hi = min(lo + per, p.N);
  if (li == 0u) { chosen[0] = 0u; chosen[1] = p.k; }

  // Radix select, most significant digit first: after round d the top 8·(d+1) bits of the k-th
  // largest key are known, and chosen[1] is how many keys equal to that prefix are still needed.
  for (var round = 0u; round < 4u; round++) {
    let shift = 24u - 8u * round;
    atomicStore(&hist[li], 0u);
    workgroupBarrier();
    let prefix = chosen[0];
    let maskHigh = select(0u, 0xffffffffu << (shift + 8u), round > 0u);
    for (var i = lo; i < hi; i++) {
      let key = sortKey(x[base + i]);
      if ((key & maskHigh) == (prefix & maskHigh)) { atomicAdd(&hist[(key >> shift) & 255u], 1u); }
    }
    workgroupBarrier();
    if (li == 0u) {
      var need = chosen[1];
      var digit = 255u;
      loop {
        let c = atomicLoad(&hist[digit]);
        if (c >= need || digit == 0u) { break; }
        need -= c;
        digit -= 1u;
      }
      chosen[0] = prefix | (digit << shift);
      chosen[1] = need;
    }
    workgroupBarrier();
  }
  let kth = chosen[0];
  let ties = chosen[1];          // keys equal to kth to take, the lowest-indexed first

  // Keys above kth go anywhere (the sort orders them); ties are ranked by index through a
  // prefix sum of each slice's tie count, slices being in index order.
  var myTies = 0u;
  for (var i = lo; i < hi; i++) { myTies += select(0u, 1u, sortKey(x[base + i]) == kth); }
  scan[li] = myTies;
  if (li == 0u) { atomicStore(&slot, 0u); }
  workgroupBarrier();
  if (li == 0u) {
    var run = 0u;
    for (var t = 0u; t < ${THREADS}u; t++) { let c = scan[t]; scan[t] = run; run += c; }
  }
  for (var e = li; e < ${P}u; e += ${THREADS}u) { candKey[e] = 0u; candIndex[e] = 0xffffffffu; }
  workgroupBarrier();
  var tieRank = scan[li];
  for (var i = lo; i < hi; i++) {
    let key = sortKey(x[base + i]);
    var take = key > kth;
    if (key == kth) { take = tieRank < ties; tieRank += 1u; }
    if (take) {
      let s = atomicAdd(&slot, 1u);
      candKey[s] = key;
      candIndex[s] = i;
    }
  }
  workgroupBarrier();

  // Bitonic sort of the P candidates (padding: key 0, index ∞, after every real entry).
  for (var size = 2u; size <= ${P}u; size <<= 1u) {
    for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
      for (var e = li; e < ${P / 2}u; e += ${THREADS}u) {
        let a = (e / stride) * stride * 2u + e % stride;  // lower position of the pair
        let b = a + stride;
        let descending = (a & size) == 0u;
        let bFirst = before(candKey[b], candIndex[b], candKey[a], candIndex[a]);
        if (bFirst == descending) {
          let k = candKey[a]; candKey[a] = candKey[b]; candKey[b] = k;
          let j = candIndex[a]; candIndex[a] = candIndex[b]; candIndex[b] = j;
        }
      }
      workgroupBarrier();
    }
  }
  for (var t = li; t < p.k; t += ${THREADS}u) {
    let i = candIndex[t];
    values[row * p.k + t] = x[base + i];
    indices[row * p.k + t] = f32(i);
  }
}`;
}

/** Candidates rounded up to a power of two (the bitonic network's width). */
function candidateWidth(k: number): number {
  return Math.max(2, 2 ** Math.ceil(Math.log2(Math.max(1, k))));
}

/** Why the WGSL top-k does not take these sizes, or null when it does. */
export function webgpuTopKDeclines(device: GPUDevice, rows: number, N: number, k: number): string | null {
  if (k > WEBGPU_TOPK_MAX_K) return `k = ${k} is above ${WEBGPU_TOPK_MAX_K}`;
  if (N >= 2 ** 24) return `rows of ${N} values: indices are exact f32 words below 2^24`;
  const bytes = candidateWidth(k) * 8 + 256 * 4 + THREADS * 4 + 16;
  if (bytes > device.limits.maxComputeWorkgroupStorageSize) return `${bytes} bytes of workgroup memory (the device has ${device.limits.maxComputeWorkgroupStorageSize})`;
  if (device.limits.maxComputeInvocationsPerWorkgroup < THREADS) return `workgroups of ${THREADS} invocations`;
  if (Math.ceil(rows / 65535) > device.limits.maxComputeWorkgroupsPerDimension) return `${rows} rows`;
  return null;
}

const USAGE_UNIFORM = 0x0040;
const USAGE_COPY_DST = 0x0008;

/** Enqueues the top-k of each of `rows` rows of N f32 words of `x` into `values` and `indices` (rows·k words each). */
export function topKWebGpu(backend: GpujsBackend, device: GPUDevice, x: GpuArray, rows: number, N: number, k: number, values: GpuArray, indices: GpuArray): void {
  const P = candidateWidth(k);
  const pipeline = backend.cached(`attnkit:webgpu-topk:${P}`, () =>
    device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: topKShader(P) }), entryPoint: 'main' } }),
  );
  const uniform = device.createBuffer({ size: 16, usage: USAGE_UNIFORM | USAGE_COPY_DST });
  device.queue.writeBuffer(uniform, 0, new Uint32Array([rows, N, k, 0]));
  const bind = device.createBindGroup({
    layout: pipeline.getBindGroupLayout(0),
    entries: [uniform, x.buffer, values.buffer, indices.buffer].map((buffer, binding) => ({ binding, resource: { buffer } })),
  });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, bind);
  pass.dispatchWorkgroups(Math.min(rows, 65535), Math.ceil(rows / 65535));
  pass.end();
  device.queue.submit([encoder.finish()]);
  uniform.destroy();
}
