// In-place writes into a destination (cache appends): WriteSlice and ScatterRows. The source is
// first converted to the destination's storage (rounded to f16/bf16, truncated to i32, or
// quantised with the destination's block size), then its rows are copied into the destination's
// chunks: by WGSL row-copy shaders on WebGPU, by typed-array copies on the host modes. Either
// way the cost is the rows written, never the size of the destination.

import { sizeOf } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import type { GpujsBackend } from '../backend.js';
import type { DeviceArray, GpuArray, HostArray } from '../device.js';
import type { Storage } from '../storage.js';
import { type RowRuns, copyRunsWebGpu } from '../webgpu-copy.js';
import { chunkValues, quantizeValues, roundValues } from './cast.js';

interface Prepared {
  readonly words: DeviceArray;
  readonly scales: DeviceArray | null;
  readonly owned: boolean;
}

/** The source's elements in the destination's storage format. */
async function prepareSource(backend: GpujsBackend, fn: string, src: Tensor, dst: Storage): Promise<Prepared> {
  const s = backend.storageOf(src, fn);
  const values = await chunkValues(backend, s, backend.chunkOf(src, fn));
  // Values that are already exact in the destination's type are copied as they are.
  if (dst.format === 'value' && (dst.dtype === 'f32' || dst.dtype === src.dtype)) return { words: values.words, scales: null, owned: values.owned };
  try {
    if (dst.dtype === 'int8' || dst.dtype === 'fp8e4m3') {
      const q = await quantizeValues(backend, values.words, src.size, dst.dtype, dst.blockSize ?? 1, 'exact');
      return { words: q.words, scales: q.scales, owned: true };
    }
    if (dst.dtype === 'f16' || dst.dtype === 'bf16' || dst.dtype === 'i32') {
      return { words: await roundValues(backend, values.words, src.size, dst.dtype), scales: null, owned: true };
    }
    throw new Error(`no conversion into ${dst.dtype} storage`);
  } finally {
    if (values.owned) backend.device.free(values.words);
  }
}

export async function writeSliceTensor(backend: GpujsBackend, dst: Tensor, src: Tensor, axis: number, start: number): Promise<Tensor> {
  const fn = 'writeSlice';
  const d = backend.storageOf(dst, fn);
  const inner = sizeOf(dst.shape.slice(axis + 1));
  const n = src.shape[axis] as number;
  const runs: RowRuns = {
    rows: sizeOf(dst.shape.slice(0, axis)),
    rowLen: n * inner,
    base: start * inner,
    stride: (dst.shape[axis] as number) * inner,
    indices: null,
  };
  if (src.size === 0) return dst;
  copyRuns(backend, fn, d, await prepareSource(backend, fn, src, d), runs, null);
  return dst;
}

export async function scatterRowsTensor(backend: GpujsBackend, dst: Tensor, src: Tensor, indices: Tensor): Promise<Tensor> {
  const fn = 'scatterRows';
  const d = backend.storageOf(dst, fn);
  const row = sizeOf(dst.shape.slice(1));
  const idx = backend.arrayOf(indices, fn);
  if (src.size === 0) return dst;
  const runs = { rows: indices.size, rowLen: row, base: 0, stride: 0 };
  copyRuns(backend, fn, d, await prepareSource(backend, fn, src, d), runs, idx);
  return dst;
}

function copyRuns(backend: GpujsBackend, fn: string, d: Storage, src: Prepared, runs: Omit<RowRuns, 'indices'>, indices: DeviceArray | null): void {
  try {
    const bs = d.blockSize ?? 1;
    const webgpu = backend.webgpu;
    for (const chunk of d.chunks) {
      if (webgpu) {
        const runSet: RowRuns = { ...runs, indices: indices ? gpu(indices, fn) : null };
        copyRunsWebGpu(backend, webgpu.device, gpu(src.words, fn), gpu(chunk.words, fn), chunk.start, chunk.length, runSet, d.format === 'bytepair', gpu(backend.dummy, fn));
        if (d.format === 'bytepair' && chunk.scales && src.scales) {
          const blocks: RowRuns = { rows: runs.rows, rowLen: runs.rowLen / bs, base: runs.base / bs, stride: runs.stride / bs, indices: runSet.indices };
          copyRunsWebGpu(backend, webgpu.device, gpu(src.scales, fn), gpu(chunk.scales, fn), chunk.start / bs, chunk.length / bs, blocks, false, gpu(backend.dummy, fn));
        }
        continue;
      }
      const rowIndex = indices ? host(indices, fn).data : null;
      copyRunsHost(host(src.words, fn), host(chunk.words, fn), chunk.start, chunk.length, runs, rowIndex, d.format === 'bytepair');
      if (d.format === 'bytepair' && chunk.scales && src.scales) {
        const blocks = { rows: runs.rows, rowLen: runs.rowLen / bs, base: runs.base / bs, stride: runs.stride / bs };
        copyRunsHost(host(src.scales, fn), host(chunk.scales, fn), chunk.start / bs, chunk.length / bs, blocks, rowIndex, false);
      }
    }
  } finally {
    if (src.owned) {
      backend.device.free(src.words);
      if (src.scales) backend.device.free(src.scales);
    }
  }
}

/** Host modes: the runs copied element by element into the chunk [cs, cs + length). */
function copyRunsHost(
  src: HostArray,
  dst: HostArray,
  cs: number,
  length: number,
  runs: Omit<RowRuns, 'indices'>,
  indices: Float32Array | Uint16Array | null,
  bytepair: boolean,
): void {
  const ce = cs + length;
  for (let k = 0; k < runs.rows; k++) {
    const start = indices ? (indices[k] as number) * runs.rowLen + runs.base : runs.base + k * runs.stride;
    const lo = Math.max(start, cs);
    const hi = Math.min(start + runs.rowLen, ce);
    if (lo >= hi) continue;
    if (!bytepair) {
      dst.data.set(src.data.subarray(k * runs.rowLen + lo - start, k * runs.rowLen + hi - start), lo - cs);
      continue;
    }
    for (let e = lo; e < hi; e++) {
      const s = k * runs.rowLen + e - start;
      const byte = ((src.data[s >> 1] as number) >> ((s & 1) * 8)) & 255;
      const w = (e - cs) >> 1;
      const old = dst.data[w] as number;
      dst.data[w] = (e - cs) & 1 ? (old & 0xff) | (byte << 8) : (old & 0xff00) | byte;
    }
  }
}

function gpu(array: DeviceArray, fn: string): GpuArray {
  if (array.kind !== 'gpu') throw new Error(`${fn}: a host array on the webgpu backend`);
  return array;
}

function host(array: DeviceArray, fn: string): HostArray {
  if (array.kind !== 'host') throw new Error(`${fn}: a GPU array on a host backend`);
  return array;
}
