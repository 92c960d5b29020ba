// NSA's decode step as one submission of four WGSL passes on gpu.js' WebGPU device (see
// decode-wgsl.ts). The composed path runs the same math as ~30 tensor-core ops and gpu.js
// launches and reads the selected blocks back to plan the sparse branch; on a GPU those launches,
// not the keys read, were the cost (BENCHMARKS.md, issue 13). This kernel applies to one query
// per sequence with f32 operands in unsplit buffers; anything else declines with its reason and
// runs composed.

/// <reference types="@webgpu/types" />
import { type Backend, type Tensor, type WebGpuHost, decodeHeadTile, fixedSubgroupSize, isWebGpuHost } from '@attnkit/tensor-core';
import type { ResolvedNSAConfig } from '../config.js';
import type { NSAWeights } from '../weights.js';
import {
  type NSADecodeVariant,
  MAX_SELECTION_BLOCKS,
  MAX_TASKS,
  SCORE_CHUNK,
  SELECT_THREADS,
  TASK_KEYS,
  cmpScoresWgsl,
  combineWgsl,
  partialsWgsl,
  selectWgsl,
} from './decode-wgsl.js';

export const NSA_DECODE_KERNEL = 'webgpu-nsa-decode';

/**
 * One decode step's operands: q [B, 1, Hq, D], k/v [B, T, Hkv, ·], x [B, 1, gateDim] and the
 * compressed blocks [B, ≥ nCmp, Hkv, ·] (a cache's, capacity rows included).
 */
export interface NSADecodeOperands {
  readonly q: Tensor;
  readonly k: Tensor;
  readonly v: Tensor;
  readonly kCmp: Tensor;
  readonly vCmp: Tensor;
  /** Complete blocks of the longest sequence. */
  readonly nCmp: number;
  readonly x: Tensor;
  readonly lengths: readonly number[];
}

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
  const operands: readonly (readonly [string, Tensor | null])[] = [
    ['q', ops.q],
    ['k', ops.k],
    ['v', ops.v],
    ['compressed keys', ops.kCmp],
    ['compressed values', ops.vCmp],
    ['x', ops.x],
    ['gate weight', weights.gateWeight],
    ['gate bias', weights.gateBias],
  ];
  for (const [name, t] of operands) {
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
  const { total: tasks } = keyTasks(config, ops.nCmp, config.window);
  if (tasks > MAX_TASKS) return no(`${tasks} key tasks (the combine pass holds at most ${MAX_TASKS})`);
  if (limits.maxComputeInvocationsPerWorkgroup < SELECT_THREADS) return no(`the device runs fewer than ${SELECT_THREADS} invocations per workgroup`);
  return { ok: true, host: backend, variant: { D, Dv, group: G, headTile, subgroups, subgroupSize } };
}

/** Encodes and submits the step; returns out [B, 1, Hq, Dv] (the GPU works on). */
export function runNSADecode(host: WebGpuHost, variant: NSADecodeVariant, ops: NSADecodeOperands, config: ResolvedNSAConfig, weights: NSAWeights): Tensor {
  const access = host.webgpu;
  const { device } = access;
  const { nHeads: Hq, nKvHeads: Hkv, vHeadDim: Dv, slcBlock, nSelected } = config;
  const B = ops.lengths.length;
  const T = ops.k.shape[1] as number;
  const nCap = ops.nCmp;
  const cmpRows = ops.kCmp.shape[1] as number;
  const maxLength = Math.max(...ops.lengths);
  const chunks = Math.ceil(nCap / SCORE_CHUNK);
  const { cmp: cmpTasks, slcPerTask, slc: slcTasks, win: winTasks, total: tasks } = keyTasks(config, nCap, Math.min(config.window, maxLength));

  const words = new Uint32Array(24);
  words.set([B, Hq, Hkv, T, nCap, nSelected, config.nInit, config.nLocal, config.cmpBlock, config.cmpStride, slcBlock, config.window]);
  words.set([cmpTasks, slcTasks, winTasks, TASK_KEYS, slcPerTask, TASK_KEYS, 0, config.gateDim, weights.gateBias ? 1 : 0, cmpRows, chunks], 12);
  new Float32Array(words.buffer)[23] = config.scale;

  // Per-call host work is what a decode step on a GPU costs (the passes themselves take
  // microseconds), so the scratch buffers and the uniform block live with the backend and are
  // rewritten in queue order; only the output is new each step.
  const scratch = host.cached(`attention-nsa/${NSA_DECODE_KERNEL}/scratch`, () => new DecodeScratch(device));
  const params = scratch.get('params', words.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  device.queue.writeBuffer(params, 0, words);
  const lengths = scratch.get('lengths', B * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  device.queue.writeBuffer(lengths, 0, Uint32Array.from(ops.lengths));
  const scores = scratch.get('scores', B * Hq * nCap * 4);
  const chunkStats = scratch.get('chunk stats', B * Hq * chunks * 8);
  const selected = scratch.get('selected', B * Hkv * nSelected * 4);
  const partial = scratch.get('partial', B * Hq * tasks * (Dv + 2) * 4);
  const out = access.allocate([B, 1, Hq, Dv]);

  const key = JSON.stringify(variant);
  const pipelines = {
    scores: pipeline(host, `scores/${key}`, () => cmpScoresWgsl(variant)),
    select: pipeline(host, `select/${variant.group}`, () => selectWgsl(variant)),
    partials: pipeline(host, `partials/${key}`, () => partialsWgsl(variant)),
    combine: pipeline(host, `combine/${Dv}`, () => combineWgsl(Dv)),
  };
  const buffer = (t: Tensor): GPUBuffer => access.buffer(t);
  const bind = (pipe: Pipeline, buffers: readonly GPUBuffer[]): GPUBindGroup =>
    device.createBindGroup({ layout: pipe.layout, entries: buffers.map((b, binding) => ({ binding, resource: { buffer: b } })) });

  const encoder = device.createCommandEncoder();
  const compute = encoder.beginComputePass();
  if (nCap > 0) {
    compute.setPipeline(pipelines.scores.pipeline);
    compute.setBindGroup(0, bind(pipelines.scores, [params, buffer(ops.q), buffer(ops.kCmp), lengths, scores, chunkStats]));
    compute.dispatchWorkgroups(chunks, Hkv * (config.groupSize / variant.headTile), B);
  }
  compute.setPipeline(pipelines.select.pipeline);
  compute.setBindGroup(0, bind(pipelines.select, [params, lengths, scores, chunkStats, selected]));
  compute.dispatchWorkgroups(Hkv, B);
  compute.setPipeline(pipelines.partials.pipeline);
  const kc = nCap > 0 ? buffer(ops.kCmp) : scores; // bound but never read without compressed blocks
  const vc = nCap > 0 ? buffer(ops.vCmp) : scores;
  compute.setBindGroup(0, bind(pipelines.partials, [params, buffer(ops.q), buffer(ops.k), buffer(ops.v), kc, vc, lengths, selected, partial]));
  compute.dispatchWorkgroups(tasks, Hkv * (config.groupSize / variant.headTile), B);
  compute.setPipeline(pipelines.combine.pipeline);
  const bias = weights.gateBias ? buffer(weights.gateBias) : scores; // unread without a bias
  compute.setBindGroup(0, bind(pipelines.combine, [params, partial, buffer(ops.x), buffer(weights.gateWeight), bias, buffer(out)]));
  compute.dispatchWorkgroups(Hq, B);
  compute.end();
  device.queue.submit([encoder.finish()]);
  return out;
}

/** Pass 3's tasks of ≤ TASK_KEYS keys: compressed blocks, selected blocks (whole), window keys. */
function keyTasks(config: ResolvedNSAConfig, nCmp: number, windowKeys: number): { cmp: number; slcPerTask: number; slc: number; win: number; total: number } {
  const cmp = Math.ceil(nCmp / TASK_KEYS);
  const slcPerTask = Math.max(1, Math.floor(TASK_KEYS / config.slcBlock));
  const slc = Math.ceil(config.nSelected / slcPerTask);
  const win = Math.ceil(windowKeys / TASK_KEYS);
  return { cmp, slcPerTask, slc, win, total: cmp + slc + win };
}

interface Pipeline {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

function pipeline(host: WebGpuHost, key: string, code: () => string): Pipeline {
  return host.cached(`attention-nsa/${NSA_DECODE_KERNEL}/${key}`, () => {
    const device = host.webgpu.device;
    const module = device.createShaderModule({ code: code(), label: key });
    const compute = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: key });
    return { pipeline: compute, layout: compute.getBindGroupLayout(0) };
  });
}

/**
 * Scratch buffers reused by every decode step on a backend, grown (doubling) when a step needs
 * more. Reuse is safe without waiting: every write and pass is ordered on the one queue. A
 * replaced buffer is destroyed at once; WebGPU keeps it alive for work already submitted.
 */
class DecodeScratch {
  readonly #device: GPUDevice;
  readonly #buffers = new Map<string, GPUBuffer>();

  constructor(device: GPUDevice) {
    this.#device = device;
  }

  get(name: string, bytes: number, usage: number = GPUBufferUsage.STORAGE): GPUBuffer {
    const have = this.#buffers.get(name);
    if (have && have.size >= bytes) return have;
    have?.destroy();
    const size = Math.max(256, 2 ** Math.ceil(Math.log2(Math.max(bytes, 1))));
    const buffer = this.#device.createBuffer({ size, usage, label: `attention-nsa decode ${name}` });
    this.#buffers.set(name, buffer);
    return buffer;
  }

  /** Called by the backend when it is disposed. */
  destroy(): void {
    for (const b of this.#buffers.values()) b.destroy();
    this.#buffers.clear();
  }
}
