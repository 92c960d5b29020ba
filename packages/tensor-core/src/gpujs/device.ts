// Device arrays: the unit of memory a gpu.js kernel binds. On WebGPU an array is a GPU
// storage buffer of 32-bit words; on the host modes (webasm, cpu) it is a typed array that
// gpu.js copies into the kernel's memory on each call. Kernels read every array as f32
// numbers; what the numbers mean (values, or two packed byte codes) is the storage's business.
/// <reference types="@webgpu/types" />

import { bufferOfWebGpuResult, detachWebGpuOutput, makeWebGpuHandle } from './gpujs-lib.js';
import type { WebGpuContextLike } from './modes.js';

/** How host arrays keep their words: f32 values, or packed byte pairs (0..65535) in 16 bits. */
export type WordKind = 'f32' | 'u16';

export interface GpuArray {
  readonly kind: 'gpu';
  readonly buffer: GPUBuffer;
  /** gpu.js' handle for binding the buffer as a kernel argument. */
  readonly handle: object;
  readonly words: number;
  readonly bytes: number;
}

export interface HostArray {
  readonly kind: 'host';
  readonly data: Float32Array | Uint16Array;
  readonly words: number;
  readonly bytes: number;
}

export type DeviceArray = GpuArray | HostArray;

export interface Device {
  readonly kind: 'gpu' | 'host';
  /** A zero-filled array of `words` words. */
  alloc(words: number, kind: WordKind): DeviceArray;
  /** A new array holding a copy of `values`. */
  fromHost(values: Float32Array | Uint16Array): DeviceArray;
  /** Words [offset, offset + count) as f32 numbers. */
  read(array: DeviceArray, offset: number, count: number): Promise<Float32Array>;
  /** The value a gpu.js kernel takes for this array. */
  bind(array: DeviceArray): unknown;
  /** Wraps a kernel's pipeline result (taking ownership of its memory) as an array of `words` words. */
  adopt(result: unknown, words: number, kind: WordKind, kernelImpl: object | null): DeviceArray;
  free(array: DeviceArray): void;
}

// WebGPU usage flags, pinned by the spec (the globals exist only where WebGPU does).
const USAGE_MAP_READ = 0x0001;
const USAGE_COPY_SRC = 0x0004;
const USAGE_COPY_DST = 0x0008;
const USAGE_STORAGE = 0x0080;
const MAP_MODE_READ = 0x0001;

export class WebGpuDevice implements Device {
  readonly kind = 'gpu';
  readonly context: WebGpuContextLike;

  constructor(context: WebGpuContextLike) {
    this.context = context;
  }

  get gpu(): GPUDevice {
    return this.context.device;
  }

  alloc(words: number): GpuArray {
    const buffer = this.gpu.createBuffer({ size: Math.max(4, words * 4), usage: USAGE_STORAGE | USAGE_COPY_SRC | USAGE_COPY_DST });
    return this.wrap(buffer, words);
  }

  fromHost(values: Float32Array | Uint16Array): GpuArray {
    const words = values instanceof Float32Array ? values : Float32Array.from(values);
    const array = this.alloc(words.length);
    if (words.length > 0) this.gpu.queue.writeBuffer(array.buffer, 0, words.buffer, words.byteOffset, words.byteLength);
    return array;
  }

  /** Writes host words into an existing array at a word offset. */
  write(array: GpuArray, offset: number, values: Float32Array): void {
    if (values.length > 0) this.gpu.queue.writeBuffer(array.buffer, offset * 4, values.buffer, values.byteOffset, values.byteLength);
  }

  async read(array: DeviceArray, offset: number, count: number): Promise<Float32Array> {
    if (array.kind !== 'gpu') throw new Error('WebGpuDevice.read of a host array');
    if (count === 0) return new Float32Array(0);
    const bytes = count * 4;
    const staging = this.gpu.createBuffer({ size: bytes, usage: USAGE_MAP_READ | USAGE_COPY_DST });
    try {
      const encoder = this.gpu.createCommandEncoder();
      encoder.copyBufferToBuffer(array.buffer, offset * 4, staging, 0, bytes);
      this.gpu.queue.submit([encoder.finish()]);
      await staging.mapAsync(MAP_MODE_READ, 0, bytes);
      const out = new Float32Array(staging.getMappedRange(0, bytes).slice(0));
      staging.unmap();
      return out;
    } finally {
      staging.destroy();
    }
  }

  bind(array: DeviceArray): unknown {
    if (array.kind !== 'gpu') throw new Error('WebGpuDevice.bind of a host array');
    return array.handle;
  }

  adopt(result: unknown, words: number, _kind: WordKind, kernelImpl: object | null): GpuArray {
    const buffer = bufferOfWebGpuResult(result);
    if (!buffer) throw new Error(`a webgpu kernel returned ${describeValue(result)} instead of a GPU buffer`);
    detachWebGpuOutput(kernelImpl, buffer);
    return this.wrap(buffer, words);
  }

  free(array: DeviceArray): void {
    if (array.kind === 'gpu') array.buffer.destroy();
  }

  private wrap(buffer: GPUBuffer, words: number): GpuArray {
    return { kind: 'gpu', buffer, handle: makeWebGpuHandle(buffer, words, this.context), words, bytes: buffer.size };
  }
}

export class HostDevice implements Device {
  readonly kind = 'host';

  alloc(words: number, kind: WordKind): HostArray {
    return host(kind === 'f32' ? new Float32Array(words) : new Uint16Array(words));
  }

  fromHost(values: Float32Array | Uint16Array): HostArray {
    return host(values.slice());
  }

  read(array: DeviceArray, offset: number, count: number): Promise<Float32Array> {
    if (array.kind !== 'host') throw new Error('HostDevice.read of a GPU array');
    const view = array.data.subarray(offset, offset + count);
    return Promise.resolve(view instanceof Float32Array ? view.slice() : Float32Array.from(view));
  }

  bind(array: DeviceArray): unknown {
    if (array.kind !== 'host') throw new Error('HostDevice.bind of a GPU array');
    return array.data;
  }

  adopt(result: unknown, words: number, kind: WordKind): HostArray {
    const flat = flattenHostResult(result, words);
    if (kind === 'u16') return host(Uint16Array.from(flat));
    return host(flat);
  }

  free(): void {
    // garbage collected
  }
}

function host(data: Float32Array | Uint16Array): HostArray {
  return { kind: 'host', data, words: data.length, bytes: data.byteLength };
}

/**
 * gpu.js returns 2-D and 3-D outputs as nested rows. On webasm the rows are views of one
 * buffer laid out exactly like the flat output, so the first `words` words are taken without
 * a copy; the cpu mode allocates each row separately and is copied.
 */
function flattenHostResult(result: unknown, words: number): Float32Array {
  if (result instanceof Float32Array) return result.length === words ? result : result.slice(0, words);
  const rows: Float32Array[] = [];
  collectRows(result, rows);
  const first = rows[0];
  if (first && first.byteOffset === 0 && first.buffer.byteLength >= words * 4) {
    let contiguous = true;
    let at = 0;
    for (const row of rows) {
      if (row.buffer !== first.buffer || row.byteOffset !== at * 4) {
        contiguous = false;
        break;
      }
      at += row.length;
    }
    if (contiguous && at >= words) return new Float32Array(first.buffer, 0, words);
  }
  const out = new Float32Array(words);
  let at = 0;
  for (const row of rows) {
    if (at >= words) break;
    out.set(row.subarray(0, Math.min(row.length, words - at)), at);
    at += row.length;
  }
  return out;
}

function collectRows(value: unknown, rows: Float32Array[]): void {
  if (value instanceof Float32Array) {
    rows.push(value);
    return;
  }
  if (!Array.isArray(value)) throw new Error(`a gpu.js kernel returned ${describeValue(value)} where rows of a Float32Array were expected`);
  for (const item of value) collectRows(item, rows);
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  if (typeof value === 'object') return `a ${value.constructor.name}`;
  return typeof value;
}
