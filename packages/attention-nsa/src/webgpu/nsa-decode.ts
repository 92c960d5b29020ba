// NSA's decode step as one submission of four WGSL passes on gpu.js' WebGPU device (see
// decode-wgsl.ts). The composed path runs the same math as ~30 tensor-core ops and gpu.js
// launches and reads the selected blocks back to plan the sparse branch; on a GPU those launches,
// not the keys read, were the cost (BENCHMARKS.md, issue 13). This kernel applies to one query
// per sequence with f32 operands in unsplit buffers; anything else declines with its reason and
// runs composed.

/// <reference types="@webgpu/types" />
import { type Backend, type Tensor, type WebGpuHost, type WebGpuScratch, decodeHeadTile, fixedSubgroupSize, isWebGpuHost, webGpuScratch } from '@attnkit/tensor-core';
import type { ResolvedNSAConfig } from '../config.js';
import { type NSADecodeOperands, namedOperands } from '../decode-operands.js';
import type { NSAWeights } from '../weights.js';
import { type NSADecodeVariant, MAX_SELECTION_BLOCKS, MAX_TASKS, SELECT_THREADS, TASK_KEYS, combineWgsl, partialsWgsl, selectWgsl } from './decode-wgsl.js';

export const NSA_DECODE_KERNEL = 'webgpu-nsa-decode';

export type NSADecodeSupport = { readonly ok: true; readonly host: WebGpuHost; readonly variant: NSADecodeVariant } | { readonly ok: false; readonly reason: string };

/** Head dims above this keep too many registers per lane. */
const MAX_HEAD_DIM = 256;
/** Query heads per kv head the select pass reduces over (its workgroup arrays). */
const MAX_GROUP = 128;

/** Whether the fused decode applies, and if not, why. */
export function nsaDecodeSupport(backend: Backend, ops: NSADecodeOperands, config: ResolvedNSAConfig, weights: NSAWeights): NSADecodeSupport {
  const no = (reason: string): NSADecodeSupport => ({ ok: false, reason });
  if (!isWebGpuHost(backend)) return no(`needs the gpujs-webgpu backend (this is ${backend.info.name})`);
  const device = backend.webgpu.device;
  const subgroupSize = fixedSubgroupSize(device);
  if (subgroupSize === 0) return no('the device has no subgroups of a fixed width');
  const { headDim: D, vHeadDim: Dv, groupSize: G } = config;
  if (ops.q.shape[1] !== 1) return no(`${String(ops.q.shape[1])} queries per sequence (decode is 1)`);
  if (D % 4 !== 0 || Dv % 4 !== 0 || D > MAX_HEAD_DIM || Dv > MAX_HEAD_DIM) return no(`head dims ${D}/${Dv}: multiples of 4 up to ${MAX_HEAD_DIM} only`);
  if (G > MAX_GROUP) return no(`${G} query heads per kv head (at most ${MAX_GROUP})`);
  for (const [name, t] of namedOperands(ops, weights)) {
    if (t === null) continue;
    if (t.dtype !== 'f32') return no(`${name} stored as ${t.dtype}: f32 only`);
    if (t.size * 4 > backend.info.maxBindingBytes) return no(`${name} is split across buffers (${t.size * 4} bytes > ${backend.info.maxBindingBytes})`);
  }
  const limits = device.limits;
  const headTile = decodeHeadTile(G, Math.ceil(D / 4 / subgroupSize) + Math.ceil(Dv / 4 / subgroupSize));
  const subgroups = [8, 4, 2, 1].find((w) => w * headTile * (Dv * 4 + 8) <= limits.maxComputeWorkgroupStorageSize && w * subgroupSize <= limits.maxComputeInvocationsPerWorkgroup) ?? 0;
  if (subgroups === 0) return no(`${headTile} heads × ${Dv} channels do not fit the device's workgroup memory`);
  const selectionBlocks = Math.floor((Math.max(...ops.lengths) - 1) / config.slcBlock) + 1;
  if (selectionBlocks > MAX_SELECTION_BLOCKS) return no(`${selectionBlocks} selection blocks (the select pass holds at most ${MAX_SELECTION_BLOCKS})`);
  const { total: tasks } = keyTasks(config, ops.nCmp, config.window, TASK_KEYS); // the most tasks any chunk gives
  if (tasks > MAX_TASKS) return no(`${tasks} key tasks (the combine pass holds at most ${MAX_TASKS})`);
  if (limits.maxComputeInvocationsPerWorkgroup < SELECT_THREADS) return no(`the device runs fewer than ${SELECT_THREADS} invocations per workgroup`);
  return { ok: true, host: backend, variant: { D, Dv, group: G, headTile, subgroups, subgroupSize } };
}

/** Encodes and submits the step; returns out [B, 1, Hq, Dv] (the GPU works on). */
export function runNSADecode(host: WebGpuHost, variant: NSADecodeVariant, ops: NSADecodeOperands, config: ResolvedNSAConfig, weights: NSAWeights): Tensor {
  const access = host.webgpu;
  const { device } = access;
  const { nHeads: Hq, nKvHeads: Hkv, headDim: D, vHeadDim: Dv, slcBlock, nSelected } = config;
  const B = ops.lengths.length;
  const T = ops.k.shape[1] as number;
  const nCap = ops.nCmp;
  const cmpRows = ops.kCmp.shape[1] as number;
  const maxLength = Math.max(...ops.lengths);
  const headTiles = Hkv * (config.groupSize / variant.headTile);
  const cmpChunk = compressedChunk(nCap, headTiles * B);
  const { cmp: cmpTasks, slcPerTask, slc: slcTasks, win: winTasks, total: tasks } = keyTasks(config, nCap, Math.min(config.window, maxLength), cmpChunk);

  // The uniform block (24 words) and, at byte LENGTHS_OFFSET of the same buffer, the lengths:
  // one write per step.
  const words = new Uint32Array(LENGTHS_OFFSET / 4 + B);
  words.set([B, Hq, Hkv, T, nCap, nSelected, config.nInit, config.nLocal, config.cmpBlock, config.cmpStride, slcBlock, config.window]);
  words.set([cmpTasks, slcTasks, winTasks, cmpChunk, slcPerTask, TASK_KEYS, 0, config.gateDim, weights.gateBias ? 1 : 0, cmpRows, 0], 12);
  new Float32Array(words.buffer)[23] = config.scale;
  words.set(ops.lengths, LENGTHS_OFFSET / 4);

  // A decode step on a GPU costs its host work (the passes take microseconds at one sequence),
  // and through Dawn's Node binding creating bind groups was ~40% of it. So everything a step
  // binds lives with the backend: the scratch buffers, and staging copies of the three operands
  // that are new every step (q, x, out), moved by copy commands in the same submission. The
  // bind groups then depend only on the history's buffers and are built once per set of them.
  const scratch = webGpuScratch(host, `attention-nsa/${NSA_DECODE_KERNEL}`);
  const params = scratch.buffer('params', words.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  device.queue.writeBuffer(params, 0, words);
  const qBytes = B * Hq * D * 4;
  const xBytes = B * config.gateDim * 4;
  const outBytes = B * Hq * Dv * 4;
  const staged = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const buffers = {
    params,
    q: scratch.buffer('q', qBytes, staged),
    x: scratch.buffer('x', xBytes, staged),
    out: scratch.buffer('out', outBytes, staged),
    scores: scratch.buffer('scores', B * Hq * Math.max(nCap, 1) * 4),
    selected: scratch.buffer('selected', B * Hkv * nSelected * 4),
    partial: scratch.buffer('partial', B * Hq * tasks * (Dv + 2) * 4),
    k: access.buffer(ops.k),
    v: access.buffer(ops.v),
    // bound but never read without compressed blocks, or without a bias
    kCmp: nCap > 0 ? access.buffer(ops.kCmp) : null,
    vCmp: nCap > 0 ? access.buffer(ops.vCmp) : null,
    gateWeight: access.buffer(weights.gateWeight),
    gateBias: weights.gateBias ? access.buffer(weights.gateBias) : null,
  };
  const key = JSON.stringify(variant);
  const pipelines = {
    compressed: pipeline(host, `partials-compressed/${key}`, () => partialsWgsl(variant, 'compressed')),
    select: pipeline(host, `select/${variant.group}/${Dv}`, () => selectWgsl(variant)),
    sparse: pipeline(host, `partials-sparse/${key}`, () => partialsWgsl(variant, 'sparse')),
    combine: pipeline(host, `combine/${Dv}`, () => combineWgsl(Dv)),
  };
  const groups = bindGroups(scratch, pipelines, buffers);
  const out = access.allocate([B, 1, Hq, Dv]);

  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(access.buffer(ops.q), 0, buffers.q, 0, qBytes);
  encoder.copyBufferToBuffer(access.buffer(ops.x), 0, buffers.x, 0, xBytes);
  const compute = encoder.beginComputePass();
  if (cmpTasks > 0) {
    compute.setPipeline(pipelines.compressed.pipeline);
    compute.setBindGroup(0, groups.compressed);
    compute.dispatchWorkgroups(cmpTasks, headTiles, B);
  }
  compute.setPipeline(pipelines.select.pipeline);
  compute.setBindGroup(0, groups.select);
  compute.dispatchWorkgroups(Hkv, B);
  compute.setPipeline(pipelines.sparse.pipeline);
  compute.setBindGroup(0, groups.sparse);
  compute.dispatchWorkgroups(slcTasks + winTasks, headTiles, B);
  compute.setPipeline(pipelines.combine.pipeline);
  compute.setBindGroup(0, groups.combine);
  compute.dispatchWorkgroups(Hq, B);
  compute.end();
  encoder.copyBufferToBuffer(buffers.out, 0, access.buffer(out), 0, outBytes);
  device.queue.submit([encoder.finish()]);
  return out;
}

/** Byte offset of the lengths in the params buffer (storage bindings start at multiples of 256). */
const LENGTHS_OFFSET = 256;
/** Bytes of the uniform block. */
const PARAMS_BYTES = 96;

type StepBuffers = Readonly<Record<'params' | 'q' | 'x' | 'out' | 'scores' | 'selected' | 'partial' | 'k' | 'v' | 'gateWeight', GPUBuffer>> &
  Readonly<Record<'kCmp' | 'vCmp' | 'gateBias', GPUBuffer | null>>;

interface StepBindGroups {
  readonly compressed: GPUBindGroup;
  readonly select: GPUBindGroup;
  readonly sparse: GPUBindGroup;
  readonly combine: GPUBindGroup;
}

function bindGroups(scratch: WebGpuScratch, pipelines: Readonly<Record<keyof StepBindGroups, Pipeline>>, b: StepBuffers): StepBindGroups {
  const uniform: GPUBufferBinding = { buffer: b.params, offset: 0, size: PARAMS_BYTES };
  const lengths: GPUBufferBinding = { buffer: b.params, offset: LENGTHS_OFFSET };
  const whole = (buffer: GPUBuffer | null): GPUBuffer => buffer ?? b.scores;
  const group = (name: keyof StepBindGroups, entries: readonly (GPUBuffer | GPUBufferBinding)[]): GPUBindGroup =>
    scratch.bindGroup(pipelines[name].key, pipelines[name].layout, entries);
  return {
    compressed: group('compressed', [uniform, b.q, whole(b.kCmp), whole(b.vCmp), lengths, b.scores, b.partial]),
    select: group('select', [uniform, lengths, b.scores, b.partial, b.selected]),
    sparse: group('sparse', [uniform, b.q, b.k, b.v, lengths, b.selected, b.partial]),
    combine: group('combine', [uniform, b.partial, b.x, b.gateWeight, whole(b.gateBias), b.out]),
  };
}

/**
 * The partials' tasks: compressed blocks in chunks of `cmpChunk` (pass 1), then selected blocks
 * (whole, ⌊TASK_KEYS/l′⌋ per task) and window keys in tasks of ≤ TASK_KEYS (pass 3).
 */
function keyTasks(config: ResolvedNSAConfig, nCmp: number, windowKeys: number, cmpChunk: number): { cmp: number; slcPerTask: number; slc: number; win: number; total: number } {
  const cmp = Math.ceil(nCmp / cmpChunk);
  const slcPerTask = Math.max(1, Math.floor(TASK_KEYS / config.slcBlock));
  const slc = Math.ceil(config.nSelected / slcPerTask);
  const win = Math.ceil(windowKeys / TASK_KEYS);
  return { cmp, slcPerTask, slc, win, total: cmp + slc + win };
}

/** Workgroups pass 1 aims for: enough to fill a large GPU, few enough that each walks many keys. */
const COMPRESSED_WORKGROUPS = 512;

/**
 * Compressed blocks per pass-1 task: TASK_KEYS while that leaves fewer than
 * COMPRESSED_WORKGROUPS workgroups, else a larger power of two up to 1024. Each task ends with a
 * merge of its subgroups and a partial written and read again, which at a batch of 8 (4 kv heads,
 * 64K) made 128-block tasks 16% slower than 1024-block ones on an H100; one sequence needs the
 * small tasks to fill the GPU (512-block tasks: 0.30 against 0.20 ms).
 */
function compressedChunk(nCmp: number, workgroupsPerChunk: number): number {
  const wanted = (nCmp * workgroupsPerChunk) / COMPRESSED_WORKGROUPS;
  return Math.min(1024, Math.max(TASK_KEYS, 2 ** Math.ceil(Math.log2(Math.max(wanted, 1)))));
}

interface Pipeline {
  readonly key: string;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

function pipeline(host: WebGpuHost, key: string, code: () => string): Pipeline {
  return host.cached(`attention-nsa/${NSA_DECODE_KERNEL}/${key}`, () => {
    const device = host.webgpu.device;
    const module = device.createShaderModule({ code: code(), label: key });
    const compute = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: key });
    return { key, pipeline: compute, layout: compute.getBindGroupLayout(0) };
  });
}
