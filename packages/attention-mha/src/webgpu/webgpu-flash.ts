// The hand-written WGSL fused attention kernel for the gpu.js backend in WebGPU mode: the
// hot path where gpu.js itself cannot go (no workgroup memory, no subgroups, one output per
// invocation). It reads the tensors' GPU buffers directly through the backend's `webgpu`
// access and queues its passes on the same device queue as every other kernel, so nothing
// is read back. Prefill (any S) runs prefillWgsl's hot pass and its fix-up pass (see there);
// a single query per sequence with subgroups available runs the split-K decode kernel and its
// combine pass.

/// <reference types="@webgpu/types" />
import { AbortCheckpoint, type Backend, type Tensor, type WebGpuHost, decodeHeadTile, fixedSubgroupSize, isWebGpuHost, webGpuScratch } from '@attnkit/tensor-core';
import type { AttentionInputs, AttentionOutputs, AttentionProblem, FusedAttentionKernel, KernelSupport } from '../problem.js';
import { combineWgsl, decodeWgsl } from './decode-wgsl.js';
import { type PrefillPass, type PrefillVariant, prefillWgsl } from './prefill-wgsl.js';

/** Head dims up to this many channels keep a row's registers within reason. */
const MAX_HEAD_DIM = 256;
/**
 * The decode kernel spreads a row over a subgroup's lanes (⌈D/4/SG⌉ vec4s each), so it takes
 * wider rows: MLA's absorbed decode at DeepSeek's full width reads 576-channel keys (latent 512 +
 * rope 64) and 512-channel values.
 */
const MAX_DECODE_HEAD_DIM = 576;

/**
 * How the prefill keeps a hidden key's non-finite value out of the P·V sum:
 * - 'fixup' (default): a hot pass with one P·V loop (hidden keys weigh 0) that flags the
 *   workgroups which loaded a hidden key's NaN/±∞ value, then a fix-up pass that recomputes
 *   only those with the masked loop;
 * - 'masked': one pass whose edge tiles run a masked P·V loop (~20% slower on an H100).
 */
export type PrefillNonFinite = 'fixup' | 'masked';

/** What the fix-up pass of one 'fixup' prefill did, for tests and benchmarks. */
export interface PrefillFixupReport {
  /** f32 [B, Hq, tiles]: 1 where the fix-up pass recomputed that query tile, else 0. The receiver disposes it. */
  readonly flags: Tensor;
  /** Queries per tile: tile j holds queries [j·queriesPerTile, (j + 1)·queriesPerTile). */
  readonly queriesPerTile: number;
}

export interface WebgpuFlashOptions {
  /** Default 'fixup'. */
  readonly prefillNonFinite?: PrefillNonFinite;
  /** Receives each 'fixup' prefill's flags (still on the device: nothing is read back unless it reads). */
  readonly onFixup?: (report: PrefillFixupReport) => void;
}

/** The WGSL fused kernel with the given prefill strategy (`webgpuFlashKernel` is the default one). */
export function createWebgpuFlashKernel(options: WebgpuFlashOptions = {}): FusedAttentionKernel {
  const prefillNonFinite = options.prefillNonFinite ?? 'fixup';
  return {
    name: 'webgpu-flash',
    supports(backend, inputs, problem) {
      return checkSupport(backend, inputs, problem);
    },
    run(backend, inputs, problem) {
      if (!isWebGpuHost(backend)) throw new Error('webgpu-flash ran on a backend it does not support');
      const device = backend.webgpu.device;
      const subgroupSize = fixedSubgroupSize(device);
      // Everything below only encodes and submits: the promise settles while the GPU works on
      // (a prefill with a signal yields between its chunks).
      const decodeFits = subgroupSize > 0 && decodeSubgroups(problem, subgroupSize, device.limits) > 0;
      if (problem.S === 1 && decodeFits) {
        return Promise.resolve(runDecode(backend, inputs, problem, subgroupSize));
      }
      return runPrefill(backend, inputs, problem, subgroupSize, prefillNonFinite, options.onFixup);
    },
  };
}

export const webgpuFlashKernel: FusedAttentionKernel = createWebgpuFlashKernel();

function checkSupport(backend: Backend, inputs: AttentionInputs, problem: AttentionProblem): KernelSupport {
  const no = (reason: string): KernelSupport => ({ ok: false, reason });
  if (!isWebGpuHost(backend)) return no(`needs the gpujs-webgpu backend (this is ${backend.info.name})`);
  if (problem.selection.kind !== 'dense') return no('sparse selections run on the gpu.js flash kernel');
  if (inputs.rowMap) return no('row-pool keys (paged and ring caches) run on the gpu.js flash kernel');
  if (inputs.bias) return no('an additive bias runs on the gpu.js flash kernel');
  if (inputs.k.dtype !== 'f32' || (inputs.v && inputs.v.dtype !== 'f32')) return no(`k/v stored as ${inputs.k.dtype}: f32 only`);
  if (problem.D % 4 !== 0 || problem.Dv % 4 !== 0) return no(`head dims ${problem.D}/${problem.Dv} are not multiples of 4`);
  const device = backend.webgpu.device;
  const subgroupSize = fixedSubgroupSize(device);
  const decode = problem.S === 1 && subgroupSize > 0 && decodeSubgroups(problem, subgroupSize, device.limits) > 0;
  const maxDim = decode ? MAX_DECODE_HEAD_DIM : MAX_HEAD_DIM;
  if (problem.D > maxDim || problem.Dv > maxDim) {
    return no(decode ? `head dims above ${maxDim}` : `head dims above ${maxDim} (a decode step with subgroups takes up to ${MAX_DECODE_HEAD_DIM})`);
  }
  const limit = device.limits.maxComputeWorkgroupStorageSize;
  if (!decode && tileKeysFor(problem, limit) === 0) return no(`even a 4-key tile needs more than the device's ${limit} bytes of workgroup memory`);
  return { ok: true };
}

/** Keys per workgroup-memory tile: 16 (the measured best) when K and V tiles fit, else fewer. */
function tileKeysFor(problem: AttentionProblem, limitBytes: number): number {
  for (const keys of [16, 8, 4]) if (keys * (problem.D + problem.Dv) * 4 + 16 <= limitBytes) return keys;
  return 0;
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/** The largest power of two ≤ cap dividing n. */
function pow2Divisor(n: number, cap: number): number {
  let p = 1;
  while (p * 2 <= cap && n % (p * 2) === 0) p *= 2;
  return p;
}

function prefillShape(problem: AttentionProblem, subgroupSize: number, valuesFromKeys: boolean, limitBytes: number): Omit<PrefillVariant, 'pass'> {
  const lanes = subgroupSize >= 2 ? pow2Divisor(gcd(problem.D / 4, problem.Dv / 4), Math.min(8, subgroupSize)) : 1;
  // Four rows per invocation reuse each key row four times; one row when a row has no lanes to share it.
  const rows = lanes >= 4 ? 4 : lanes === 2 ? 2 : 1;
  return { D: problem.D, Dv: problem.Dv, rows, lanes, rowGroups: Math.min(256 / lanes, 32), tileKeys: tileKeysFor(problem, limitBytes), valuesFromKeys };
}

interface Bound {
  readonly params: GPUBuffer;
  readonly lengths: GPUBuffer;
}

function bindParams(device: GPUDevice, problem: AttentionProblem, splitKeys: number, splits: number): Bound {
  const data = paramsWords(problem, splitKeys, splits, null);
  const params = device.createBuffer({ size: PARAMS_BYTES, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(params, 0, data, 0, PARAMS_BYTES);
  const lengths = device.createBuffer({ size: Math.max(16, problem.B * 4), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(lengths, 0, data, LENGTHS_OFFSET, problem.B * 4);
  return { params, lengths };
}

function pipeline(backend: WebGpuHost, key: string, code: () => string): GPUComputePipeline {
  return backend.cached(`attention-mha/webgpu-flash/${key}`, () => {
    const device = backend.webgpu.device;
    const module = device.createShaderModule({ code: code(), label: key });
    return device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: key });
  });
}

/** A prefill with a signal is submitted in about this many chunks of query tiles, checked between. */
const PREFILL_CHUNKS = 16;

async function runPrefill(
  backend: WebGpuHost,
  inputs: AttentionInputs,
  problem: AttentionProblem,
  subgroupSize: number,
  nonFinite: PrefillNonFinite,
  onFixup: WebgpuFlashOptions['onFixup'],
): Promise<AttentionOutputs> {
  const access = backend.webgpu;
  const { device } = access;
  const shape = prefillShape(problem, subgroupSize, inputs.v === null, device.limits.maxComputeWorkgroupStorageSize);
  const tiles = Math.ceil(problem.S / (shape.rowGroups * shape.rows));
  // Dispatched in this order over the same grid: 'hot' then 'fixup', or 'masked' alone.
  const order: readonly PrefillPass[] = nonFinite === 'fixup' ? ['hot', 'fixup'] : ['masked'];
  const pipes = order.map((prefillPass) => {
    const variant: PrefillVariant = { ...shape, pass: prefillPass };
    return pipeline(backend, `prefill/${JSON.stringify(variant)}`, () => prefillWgsl(variant));
  });
  const out = access.allocate([problem.B, problem.S, problem.Hq, problem.Dv]);
  const lse = access.allocate([problem.B, problem.S, problem.Hq]);
  // [B, Hq, tiles]: written by every workgroup of the hot pass, read by the fix-up pass.
  const flags = nonFinite === 'fixup' ? access.allocate([problem.B, problem.Hq, tiles]) : null;
  const { params, lengths } = bindParams(device, problem, 0, 0);
  const firstTile = device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
  const k = access.buffer(inputs.k);
  const buffers = [params, access.buffer(inputs.q), k, inputs.v ? access.buffer(inputs.v) : k, lengths, access.buffer(out), access.buffer(lse), firstTile];
  if (flags) buffers.push(access.buffer(flags));
  const passes = pipes.map((pipe) => ({
    pipe,
    bindGroup: device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) }),
  }));
  // Without a signal one dispatch (per pass) takes every query tile; with one, chunks of tiles go
  // in separate submissions with a checkpoint between them. Buffers destroyed here are freed once
  // the work already queued no longer needs them (an abort stops only what is not yet submitted).
  const perChunk = problem.signal ? Math.max(1, Math.ceil(tiles / PREFILL_CHUNKS)) : tiles;
  const checkpoint = new AbortCheckpoint(problem.signal, problem.fn, 0);
  try {
    for (let firstOfChunk = 0; firstOfChunk < tiles; firstOfChunk += perChunk) {
      if (firstOfChunk > 0) await checkpoint.check();
      device.queue.writeBuffer(firstTile, 0, Uint32Array.from([firstOfChunk, tiles, 0, 0])); // ordered with the submissions
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      // The fix-up dispatch sees the hot one's flags, o and lse: dispatches in a pass are ordered.
      for (const { pipe, bindGroup } of passes) {
        pass.setPipeline(pipe);
        pass.setBindGroup(0, bindGroup);
        pass.dispatchWorkgroups(Math.min(perChunk, tiles - firstOfChunk), problem.Hq, problem.B);
      }
      pass.end();
      device.queue.submit([encoder.finish()]);
    }
  } catch (error) {
    out.dispose();
    lse.dispose();
    flags?.dispose();
    throw error;
  } finally {
    for (const b of [params, lengths, firstTile]) b.destroy();
  }
  if (flags) {
    if (onFixup) onFixup({ flags, queriesPerTile: shape.rowGroups * shape.rows });
    else flags.dispose();
  }
  return finish(out, lse, problem);
}

/** A key list on the device for the decode kernel: i32 [B, 1, Hkv|1, width] (f32 words). */
export interface DeviceKeyList {
  readonly tensor: Tensor;
  readonly width: number;
  /** 1 when every kv head shares the list, else Hkv. */
  readonly heads: number;
}

function runDecode(backend: WebGpuHost, inputs: AttentionInputs, problem: AttentionProblem, subgroupSize: number, list: DeviceKeyList | null = null): AttentionOutputs {
  const access = backend.webgpu;
  const { device } = access;
  const group = problem.Hq / problem.Hkv;
  const subgroups = decodeSubgroups(problem, subgroupSize, device.limits);
  // Enough splits to fill the GPU (a few workgroups per compute unit) without tiny ranges.
  const keys = list ? list.width : Math.max(...problem.lengths, 1);
  const wanted = Math.max(1, Math.ceil(512 / (problem.B * problem.Hkv)));
  const splitKeys = Math.max(256, Math.ceil(keys / wanted / 256) * 256);
  const splits = Math.max(1, Math.ceil(keys / splitKeys));
  const tile = headTile(problem, subgroupSize);
  const variant = { D: problem.D, Dv: problem.Dv, group, headTile: tile, subgroups, subgroupSize, valuesFromKeys: inputs.v === null, listed: list !== null };
  const decodeKey = `decode/${JSON.stringify(variant)}`;
  const decode = pipeline(backend, decodeKey, () => decodeWgsl(variant));
  const combine = pipeline(backend, `combine/${problem.Dv}`, () => combineWgsl(problem.Dv));

  // A decode step costs its host calls more than its passes (one createBindGroup ~26 µs through
  // Dawn's Node binding), so everything it binds is scratch kept with the backend: the uniform
  // block and lengths in one buffer (one write), the partials, and copies of the call's own
  // tensors (q and the key list in, out and lse back), moved by copy commands in the same
  // submission. The bind groups then vary only with the cache's buffers.
  const scratch = webGpuScratch(backend, 'attention-mha/webgpu-decode');
  const uniforms = paramsWords(problem, splitKeys, splits, list);
  const params = scratch.buffer('params', LENGTHS_OFFSET + problem.B * 4, GPUBufferUsage.UNIFORM | GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  device.queue.writeBuffer(params, 0, uniforms);
  const uniform = { buffer: params, offset: 0, size: PARAMS_BYTES };
  const lengths = { buffer: params, offset: LENGTHS_OFFSET };
  const staged = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const qBytes = problem.B * problem.Hq * problem.D * 4;
  const q = scratch.buffer('q', qBytes, staged);
  const listBytes = list ? list.tensor.size * 4 : 0;
  const keyList = list ? [scratch.buffer('key list', listBytes, staged)] : [];
  const partial = scratch.buffer('partial', problem.B * problem.Hq * splits * (problem.Dv + 2) * 4);
  const outBytes = problem.B * problem.Hq * problem.Dv * 4;
  const lseBytes = problem.B * problem.Hq * 4;
  const outStage = scratch.buffer('out', outBytes, staged);
  const lseStage = scratch.buffer('lse', lseBytes, staged);
  const k = access.buffer(inputs.k);
  const v = inputs.v ? access.buffer(inputs.v) : k;
  const first = scratch.bindGroup(decodeKey, decode.getBindGroupLayout(0), [uniform, q, k, v, lengths, partial, ...keyList]);
  const second = scratch.bindGroup(`combine/${problem.Dv}`, combine.getBindGroupLayout(0), [uniform, partial, outStage, lseStage]);
  const out = access.allocate([problem.B, 1, problem.Hq, problem.Dv]);
  const lse = access.allocate([problem.B, 1, problem.Hq]);

  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(access.buffer(inputs.q), 0, q, 0, qBytes);
  if (list) encoder.copyBufferToBuffer(access.buffer(list.tensor), 0, keyList[0] as GPUBuffer, 0, listBytes);
  const pass = encoder.beginComputePass();
  pass.setPipeline(decode);
  pass.setBindGroup(0, first);
  pass.dispatchWorkgroups(splits * (group / tile), problem.Hkv, problem.B);
  pass.setPipeline(combine);
  pass.setBindGroup(0, second);
  pass.dispatchWorkgroups(problem.B * problem.Hq);
  pass.end();
  encoder.copyBufferToBuffer(outStage, 0, access.buffer(out), 0, outBytes);
  encoder.copyBufferToBuffer(lseStage, 0, access.buffer(lse), 0, lseBytes);
  device.queue.submit([encoder.finish()]);
  return finish(out, lse, problem);
}

/** Byte offset of the lengths in a decode's params buffer (storage bindings start at multiples of 256). */
const LENGTHS_OFFSET = 256;
/** Bytes of the uniform block (PARAMS_WGSL). */
const PARAMS_BYTES = 64;

/** The uniform block, then (at LENGTHS_OFFSET) the lengths: one write. */
function paramsWords(problem: AttentionProblem, splitKeys: number, splits: number, list: DeviceKeyList | null): ArrayBuffer {
  const data = new ArrayBuffer(LENGTHS_OFFSET + problem.B * 4);
  const u = new Uint32Array(data);
  u.set([problem.B, problem.S, problem.T, problem.Hq, problem.Hkv, problem.Hq / problem.Hkv, problem.causal ? 1 : 0, problem.window ?? 0, problem.sinkTokens, splitKeys, splits]);
  new Float32Array(data)[11] = problem.scale;
  u.set([list?.width ?? 0, list?.heads ?? 1], 12);
  u.set(problem.lengths, LENGTHS_OFFSET / 4);
  return data;
}

/**
 * The decode kernel over a key list that stays on the device (sparseAttention with
 * `distinctIndices`): whether it applies, and if not, why.
 */
export function listDecodeSupport(backend: Backend, inputs: AttentionInputs, problem: AttentionProblem, list: DeviceKeyList): KernelSupport {
  if (problem.S !== 1) return { ok: false, reason: `${problem.S} queries per sequence (decode is 1)` };
  const support = checkSupport(backend, inputs, { ...problem, selection: { kind: 'dense' } });
  if (!support.ok) return support;
  if (!isWebGpuHost(backend)) return { ok: false, reason: 'not a WebGPU backend' };
  const device = backend.webgpu.device;
  const subgroupSize = fixedSubgroupSize(device);
  if (subgroupSize === 0 || decodeSubgroups(problem, subgroupSize, device.limits) === 0) return { ok: false, reason: 'the device has no subgroups of a fixed width' };
  if (list.tensor.size * 4 > backend.info.maxBindingBytes) return { ok: false, reason: 'the key list is split across buffers' };
  return { ok: true };
}

/** Runs the list decode (after listDecodeSupport accepted it); the GPU works on. */
export function runListDecode(backend: Backend, inputs: AttentionInputs, problem: AttentionProblem, list: DeviceKeyList): AttentionOutputs {
  if (!isWebGpuHost(backend)) throw new Error('the list decode ran on a backend it does not support');
  return runDecode(backend, inputs, problem, fixedSubgroupSize(backend.webgpu.device), list);
}

/** Query heads per decode workgroup (see decodeHeadTile): a lane holds ⌈D/4/SG⌉ + ⌈Dv/4/SG⌉ vec4s per head. */
function headTile(problem: AttentionProblem, subgroupSize: number): number {
  return decodeHeadTile(problem.Hq / problem.Hkv, Math.ceil(problem.D / 4 / subgroupSize) + Math.ceil(problem.Dv / 4 / subgroupSize));
}

/** Subgroups per decode workgroup: 8 (measured best on an H100) or fewer to fit the device. */
function decodeSubgroups(problem: AttentionProblem, subgroupSize: number, limits: GPUSupportedLimits): number {
  const tile = headTile(problem, subgroupSize);
  for (const w of [8, 4, 2, 1]) {
    const bytes = w * tile * (problem.Dv * 4 + 8);
    if (bytes <= limits.maxComputeWorkgroupStorageSize && w * subgroupSize <= limits.maxComputeInvocationsPerWorkgroup) return w;
  }
  return 0;
}

function finish(out: Tensor, lse: Tensor, problem: AttentionProblem): AttentionOutputs {
  if (problem.returnLse) return { out, lse };
  lse.dispose();
  return { out, lse: null };
}
