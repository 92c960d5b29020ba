// The fused WebGPU indexer: the decode step's scores and exact top-k as one submission of ten
// WGSL passes on gpu.js' own WebGPU device (indexer-wgsl.ts), over f32 or fp8-e4m3 keys (the
// deployed indexPrecision 'fp8': dequantised as they are read). The gpujs-indexer kernel launches
// a score kernel and tensor-core's topK, several gpu.js launches each; on a GPU those launches,
// not the work, were the cost of a DSA step (BENCHMARKS.md, issue 13). This kernel takes the
// decode shape — at most MAX_QUERIES queries per sequence over keys in one buffer — and
// declines anything else with its reason (a prefill runs gpujs-indexer).
//
// Axis letters: B batch, S queries, T keys, H_I heads, D_I head dim, K picks, R = B·S rows.

/// <reference types="@webgpu/types" />
import { type Backend, BackendError, type WebGpuHost, isWebGpuHost, throwIfAborted, webGpuScratch } from '@attnkit/tensor-core';
import type { FusedIndexerKernel, IndexerScoreInputs, IndexerScoreOutputs, IndexerScoreProblem } from '../problem.js';
import {
  BINS,
  CHUNK,
  PARAMS_WORDS,
  SCORE_TILE,
  SELECT_THREADS,
  compactWgsl,
  countWgsl,
  findWgsl,
  histWgsl,
  orderWgsl,
  scoresVariant,
  scoresWgsl,
} from './indexer-wgsl.js';

export const WEBGPU_INDEXER_KERNEL = 'webgpu-indexer';

/** Queries per sequence the kernel takes: a decode step (speculative decoding included), not a prefill. */
export const MAX_QUERIES = 8;
/** Key rows held in a lane's registers by the scores pass. */
const MAX_HEAD_DIM = 256;
/** Indices are written as f32 numbers (the backend's i32 storage): exact below 2^24. */
const MAX_KEYS = 1 << 24;

export const webgpuIndexerKernel: FusedIndexerKernel = {
  name: WEBGPU_INDEXER_KERNEL,
  supports(backend, inputs, p) {
    const support = webgpuIndexerSupport(backend, inputs, p);
    return support.ok ? { ok: true } : support;
  },
  async run(backend, inputs, p) {
    const support = webgpuIndexerSupport(backend, inputs, p);
    if (!support.ok) throw new BackendError({ fn: p.fn, expected: `inputs ${WEBGPU_INDEXER_KERNEL} accepts`, got: support.reason });
    throwIfAborted(p.signal, p.fn);
    return Promise.resolve(runWebGpuIndexer(support.host, inputs, p));
  },
};

type Support = { readonly ok: true; readonly host: WebGpuHost } | { readonly ok: false; readonly reason: string };

export function webgpuIndexerSupport(backend: Backend, inputs: IndexerScoreInputs, p: IndexerScoreProblem): Support {
  const no = (reason: string): Support => ({ ok: false, reason });
  if (!isWebGpuHost(backend)) return no(`needs the gpujs-webgpu backend (this is ${backend.info.name})`);
  if (p.S > MAX_QUERIES) return no(`${p.S} queries per sequence (a decode step has at most ${MAX_QUERIES}; a prefill runs the tiled kernels)`);
  const { dtype, blockSize } = inputs.keys;
  if (dtype !== 'f32' && dtype !== 'fp8e4m3') return no(`keys stored as ${dtype}: f32 or fp8e4m3 only`);
  if (dtype === 'fp8e4m3' && (blockSize === undefined || blockSize % 4 !== 0)) return no(`fp8 keys with scale blocks of ${String(blockSize)} values (a multiple of 4 only)`);
  if (p.headDim % 4 !== 0 || p.headDim > MAX_HEAD_DIM) return no(`index head dim ${p.headDim}: multiples of 4 up to ${MAX_HEAD_DIM} only`);
  if (p.T >= MAX_KEYS) return no(`${p.T} keys (indices are exact below ${MAX_KEYS})`);
  const R = p.B * p.S;
  const max = backend.info.maxBindingBytes;
  const bindings: readonly (readonly [string, number])[] = [
    ['q', inputs.q.size * 4],
    ['weights', inputs.weights.size * 4],
    ['keys', backend.storageBytes(dtype, inputs.keys.size, blockSize)],
    ['scores', R * p.T * 4],
    ['pick list', R * p.topk * 8],
  ];
  for (const [name, bytes] of bindings) if (bytes > max) return no(`${name} of ${bytes} bytes exceed one binding (${max})`);
  const limits = backend.webgpu.device.limits;
  if (limits.maxComputeInvocationsPerWorkgroup < SELECT_THREADS) return no(`the device runs fewer than ${SELECT_THREADS} invocations per workgroup`);
  if (limits.maxComputeWorkgroupStorageSize < BINS * 4) return no(`the device has less than ${BINS * 4} bytes of workgroup memory`);
  const grid = Math.max(Math.ceil(p.T / SCORE_TILE), R, p.B);
  if (grid > limits.maxComputeWorkgroupsPerDimension) return no(`${grid} workgroups along one grid dimension (the device takes ${limits.maxComputeWorkgroupsPerDimension})`);
  return { ok: true, host: backend };
}

/** Encodes and submits the passes; returns the picks (and scores) the GPU works on. */
function runWebGpuIndexer(host: WebGpuHost, inputs: IndexerScoreInputs, p: IndexerScoreProblem): IndexerScoreOutputs {
  const access = host.webgpu;
  const { device } = access;
  const { B, S, T, heads: HI, headDim: DI, topk: K } = p;
  const R = B * S;
  const Tcap = inputs.keys.shape[1] as number;
  const chunks = Math.ceil(T / CHUNK);

  const words = new Uint32Array(PARAMS_WORDS);
  const fp8 = inputs.keys.dtype === 'fp8e4m3';
  words.set([B, S, HI, T, Tcap, K, R, chunks]);
  new Float32Array(words.buffer)[8] = -Infinity;
  words[9] = fp8 ? (inputs.keys.blockSize ?? 0) : 0;

  // Scratch lives with the backend and is rewritten in queue order (as the NSA decode's): a
  // decode step allocates only its outputs.
  const scratch = webGpuScratch(host, `indexer-dsa/${WEBGPU_INDEXER_KERNEL}`);
  const params = scratch.buffer('params', words.byteLength, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
  device.queue.writeBuffer(params, 0, words);
  const lengths = scratch.buffer('lengths', B * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  device.queue.writeBuffer(lengths, 0, Uint32Array.from(p.lengths));
  const histBytes = R * BINS * 4; // one digit's histograms; the three sit in one buffer (256-byte aligned)
  const hist = scratch.buffer('hist', 3 * histBytes, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  const state = scratch.buffer('state', R * 8);
  const eqCounts = scratch.buffer('equal counts', R * chunks * 4);
  const listCounts = scratch.buffer('list counts', R * 4, GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST);
  const list = scratch.buffer('list', R * K * 8);

  const indices = access.allocate([B, S, 1, K], 'i32'); // [B, S, 1, K]
  const scores = p.keepScores ? access.allocate([B, S, T]) : null; // [B, S, T]
  const scoreBuffer = scores ? access.buffer(scores) : scratch.buffer('scores', R * T * 4);
  const out = access.buffer(indices);

  const variant = scoresVariant(DI, fp8);
  type Entry = GPUBuffer | { readonly buffer: GPUBuffer; readonly offset: number; readonly size: number };
  const bind = (pl: Pipeline, entries: readonly Entry[]): GPUBindGroup =>
    device.createBindGroup({ layout: pl.layout, entries: entries.map((e, binding) => ({ binding, resource: 'offset' in e ? e : { buffer: e } })) });
  const common = [params, lengths];
  const digit = (level: number): Entry => ({ buffer: hist, offset: level * histBytes, size: histBytes });

  const encoder = device.createCommandEncoder();
  encoder.clearBuffer(hist, 0, 3 * histBytes);
  encoder.clearBuffer(listCounts, 0, R * 4);
  const pass = encoder.beginComputePass();
  // Bind groups over scratch buffers only are made once per size (host time is what a decode
  // step on a GPU costs); those over the call's tensors are made per call.
  const dispatch = (key: string, code: () => string, entries: readonly Entry[], grid: readonly [number, number], reusable: boolean): void => {
    const pl = pipeline(host, key, code);
    pass.setPipeline(pl.pipeline);
    pass.setBindGroup(0, reusable ? scratch.bindGroup(key, pl.layout, entries) : bind(pl, entries));
    pass.dispatchWorkgroups(grid[0], grid[1]);
  };
  const lean = scores === null; // the score rows are scratch too
  dispatch(`scores/${JSON.stringify(variant)}`, () => scoresWgsl(variant), [...common, access.buffer(inputs.q), access.buffer(inputs.weights), access.buffer(inputs.keys), scoreBuffer, ...(fp8 ? [access.scalesBuffer(inputs.keys)] : [])], [Math.ceil(T / SCORE_TILE), B], false);
  for (const level of [0, 1, 2]) {
    dispatch(`hist/${level}`, () => histWgsl(level), level === 0 ? [...common, scoreBuffer, digit(0)] : [...common, scoreBuffer, digit(level), state], [chunks, R], lean);
    dispatch(`find/${level}`, () => findWgsl(level), [...common, digit(level), state], [R, 1], true);
  }
  dispatch('count', countWgsl, [...common, scoreBuffer, state, eqCounts], [chunks, R], lean);
  dispatch('compact', compactWgsl, [...common, scoreBuffer, state, eqCounts, listCounts, list, out], [chunks, R], false);
  dispatch('order', orderWgsl, [...common, state, list, out], [Math.ceil(K / SELECT_THREADS), R], false);
  pass.end();
  device.queue.submit([encoder.finish()]);
  return { indices, scores };
}

interface Pipeline {
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
}

function pipeline(host: WebGpuHost, key: string, code: () => string): Pipeline {
  return host.cached(`indexer-dsa/${WEBGPU_INDEXER_KERNEL}/${key}`, () => {
    const device = host.webgpu.device;
    const module = device.createShaderModule({ code: code(), label: `indexer ${key}` });
    const compute = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' }, label: `indexer ${key}` });
    return { pipeline: compute, layout: compute.getBindGroupLayout(0) };
  });
}
