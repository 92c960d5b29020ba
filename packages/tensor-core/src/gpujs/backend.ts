// The gpu.js backend: one class for every gpu.js mode. Tensors own device arrays (GPU buffers on
// WebGPU, typed arrays on the host modes) through refcounted storage; kernels are compiled once
// per backend and produce new device arrays that stay on the device until `read`.
/// <reference types="@webgpu/types" />

import type { Backend, BackendInfo, DataId, HostData, MemoryReport } from '../backend.js';
import { type DType, decodeBf16, decodeF16, isQuantized } from '../dtype.js';
import { BackendError, CapacityError, DTypeError, ShapeError, formatShape } from '../errors.js';
import type { KernelTable } from '../kernels.js';
import { type Shape, assertValidShape, sizeOf } from '../shape.js';
import { Tensor } from '../tensor.js';
import { type Device, type DeviceArray, HostDevice, WebGpuDevice } from './device.js';
import { type GpujsKernel, type GpujsKernelSpec, type WebGpuAccess, createGpujsKernel, createWebGpuAccess } from './extension.js';
import { type GpujsInstance, createGpu } from './gpujs-lib.js';
import { type GridLimits, fp8Table } from './kernels/common.js';
import { gpujsKernels } from './kernels/index.js';
import type { GpujsMode, ModeRuntime } from './modes.js';
import { type KernelArg, KernelRuntime, type KernelSpec, type OutputGrid, type WasmModuleReport } from './runtime.js';
import {
  type Chunk,
  type Storage,
  formatOf,
  freeStorage,
  planChunks,
  storageBufferCount,
  storageBytes,
  unpackBytePairs,
  wordKindOf,
  wordsOf,
} from './storage.js';

const GPUJS_BACKEND = Symbol.for('attnkit.backend.gpujs');

/** Integers a gpu.js kernel reads exactly (i32 storage is f32 numbers). */
const I32_LIMIT = 2 ** 24;

export interface GpujsBackendOptions {
  /**
   * Lowers the largest binding, in bytes, below the device's own limit (WebGPU
   * maxStorageBufferBindingSize). Tensors above it are split across buffers; tests use a small
   * value to exercise splitting cheaply.
   */
  readonly maxBindingBytes?: number;
  /**
   * webasm: how many WebAssembly modules (one WebAssembly.Memory each, one per kernel and size
   * signature) the backend keeps, least recently used released first. Default 48: browsers cap
   * the memories a page may hold (Chromium reserves ~10 GiB of address space for each).
   */
  readonly maxWasmModules?: number;
}

/**
 * A backend running attnkit's kernels through gpu.js in one of its modes (`webgpu`, `webgl2`,
 * `webgl`, `headlessgl`, `webasm`, `cpu`). Create it with `createGpujsBackend` (or
 * `createBackend`), pass it explicitly, dispose it when done.
 *
 * Beyond the `Backend` contract it offers the extension API other packages build fused kernels
 * on: `kernel()` (a compiled-once gpu.js kernel run on tensors), `webgpu` (the GPUDevice and
 * tensors' GPU buffers, for hand-written WGSL) and `cached()` (per-backend objects such as
 * compute pipelines).
 */
export class GpujsBackend implements Backend {
  readonly [GPUJS_BACKEND] = true;
  readonly specVersion = 1;
  readonly info: BackendInfo;
  readonly kernels: KernelTable;
  /** The gpu.js mode every kernel of this backend runs in. */
  readonly mode: GpujsMode;
  readonly #device: Device;
  readonly #gpu: GpujsInstance;
  readonly #runtime: KernelRuntime;
  readonly #webgpu: WebGpuAccess | null;
  readonly #store = new Map<DataId, Storage>();
  readonly #cache = new Map<string, unknown>();
  readonly #limits: GridLimits;
  #dummy: DeviceArray | null = null;
  #nextId = 1;
  #liveTensors = 0;
  #disposed = false;
  /** Why the WebGPU device was lost (`GPUDeviceLostInfo`), once it was; null while it lives. */
  #lost: string | null = null;

  /** @internal use createGpujsBackend */
  constructor(name: string, runtime: ModeRuntime, options: GpujsBackendOptions = {}) {
    this.mode = runtime.mode;
    const maxBindingBytes = Math.min(runtime.maxBindingBytes, options.maxBindingBytes ?? Infinity);
    this.info = {
      name,
      family: 'gpujs',
      deviceKind: runtime.mode === 'cpu' || runtime.mode === 'webasm' ? 'cpu' : 'gpu',
      maxBufferBytes: runtime.maxBufferBytes,
      maxBindingBytes,
      f16Compute: false,
      adapter: runtime.adapter,
    };
    this.#device = runtime.webgpu ? new WebGpuDevice(runtime.webgpu) : new HostDevice();
    this.#gpu = createGpu(runtime.mode);
    this.#runtime = new KernelRuntime(this.#gpu, this.#device, options.maxWasmModules);
    this.#limits = { maxY: runtime.webgpu ? runtime.webgpu.device.limits.maxComputeWorkgroupsPerDimension * 8 : 2 ** 30 };
    this.#webgpu = this.#device instanceof WebGpuDevice ? createWebGpuAccess(this, this.#device) : null;
    this.kernels = gpujsKernels(this);
    // A lost device (driver reset, GPUDevice.destroy(), a browser reclaiming the GPU) ends this
    // backend: every later operation throws a BackendError instead of running on dead buffers.
    // gpu.js drops its shared context on loss, so a backend created afterwards gets a new device.
    void runtime.webgpu?.device.lost.then((info) => {
      this.#lost = `${info.reason === 'destroyed' ? 'destroyed' : 'lost'}${info.message ? `: ${info.message}` : ''}`;
    });
  }

  /** True once the WebGPU device behind this backend was lost; create a new backend then. */
  get isDeviceLost(): boolean {
    return this.#lost !== null;
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  // --- Backend: storage ------------------------------------------------------------------------

  upload(values: HostData, shape: Shape, dtype: 'f32' | 'f16' | 'bf16' | 'i32'): Tensor {
    const fn = 'upload';
    this.assertLive(fn);
    assertValidShape(shape, fn);
    if (values.length !== sizeOf(shape)) {
      throw new ShapeError({ fn, expected: `${sizeOf(shape)} values for shape ${formatShape(shape)}`, got: `${values.length} values` });
    }
    let words: Float32Array;
    switch (dtype) {
      case 'f32':
        if (!(values instanceof Float32Array)) throw new DTypeError({ fn, expected: 'a Float32Array for f32', got: values.constructor.name });
        words = values;
        break;
      case 'i32': {
        if (!(values instanceof Int32Array)) throw new DTypeError({ fn, expected: 'an Int32Array for i32', got: values.constructor.name });
        for (let i = 0; i < values.length; i++) {
          const v = values[i] as number;
          if (v > I32_LIMIT || v < -I32_LIMIT) {
            throw new CapacityError({ fn, expected: `i32 values within ±2^24 (gpu.js kernels read integers as f32) on ${this.info.name}`, got: `${v} at index ${i}` });
          }
        }
        words = Float32Array.from(values);
        break;
      }
      case 'f16':
      case 'bf16':
        if (!(values instanceof Uint16Array)) throw new DTypeError({ fn, expected: `a Uint16Array of ${dtype} bits`, got: values.constructor.name });
        words = dtype === 'f16' ? decodeF16(values) : decodeBf16(values);
        break;
    }
    const chunks = planChunks(shape, dtype, this.info.maxBindingBytes, fn).map(
      (c): Chunk => ({ ...c, words: this.#device.fromHost(words.subarray(c.start, c.start + c.length)), scales: null }),
    );
    return this.adoptStorage({ dtype, format: 'value', size: sizeOf(shape), blockSize: undefined, chunks, refs: 1 }, shape);
  }

  zeros(shape: Shape, dtype: DType, blockSize?: number): Tensor {
    const fn = 'zeros';
    this.assertLive(fn);
    assertValidShape(shape, fn);
    const format = formatOf(dtype);
    const block = isQuantized(dtype) ? (blockSize ?? (shape[shape.length - 1] ?? 1)) : undefined;
    if (block !== undefined && (!Number.isInteger(block) || block < 1 || (shape[shape.length - 1] ?? 1) % block !== 0)) {
      throw new ShapeError({ fn, expected: `a block size dividing the last axis of ${formatShape(shape)}`, got: String(block) });
    }
    const chunks = planChunks(shape, dtype, this.info.maxBindingBytes, fn).map((c): Chunk => {
      const words = this.#device.alloc(wordsOf(format, c.length), wordKindOf(format));
      const scales = block === undefined ? null : this.#device.fromHost(new Float32Array(c.length / block).fill(1));
      return { ...c, words, scales };
    });
    return this.adoptStorage({ dtype, format, size: sizeOf(shape), blockSize: block, chunks, refs: 1 }, shape);
  }

  async read(t: Tensor): Promise<Float32Array> {
    const s = this.storageOf(t, 'read');
    const out = new Float32Array(s.size);
    const table = s.dtype === 'fp8e4m3' ? fp8Table() : null;
    for (const c of s.chunks) {
      const words = await this.#readback(c.words, 0, wordsOf(s.format, c.length));
      if (s.format === 'value') {
        out.set(words.subarray(0, c.length), c.start);
        continue;
      }
      const bs = s.blockSize ?? 1;
      const scales = c.scales ? await this.#readback(c.scales, 0, c.length / bs) : new Float32Array(c.length / bs).fill(1);
      const codes = unpackBytePairs(words, c.length);
      for (let i = 0; i < c.length; i++) {
        const code = codes[i] as number;
        const v = table ? (table[code] as number) : code >= 128 ? code - 256 : code;
        out[c.start + i] = v * (scales[Math.floor(i / bs)] as number);
      }
    }
    return out;
  }

  /** A device readback; on WebGPU a failed map (a device lost meanwhile) becomes a BackendError. */
  async #readback(array: DeviceArray, offset: number, count: number): Promise<Float32Array> {
    try {
      return await this.#device.read(array, offset, count);
    } catch (error) {
      if (!(this.#device instanceof WebGpuDevice)) throw error;
      // The loss is reported through a promise that may settle just after the failed map.
      await new Promise((resolve) => setTimeout(resolve, 0));
      const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new BackendError(
        { fn: 'read', expected: 'a readback from a live GPU device', got: this.#lost !== null ? `${this.info.name}'s device ${this.#lost} (create a new backend)` : `a failed readback (${why})` },
        { cause: error },
      );
    }
  }

  async readInt(t: Tensor): Promise<Int32Array> {
    const s = this.storageOf(t, 'readInt');
    if (s.dtype !== 'i32') throw new DTypeError({ fn: 'readInt', expected: 'an i32 tensor', got: s.dtype });
    return Int32Array.from(await this.read(t));
  }

  share(t: Tensor, shape: Shape): Tensor {
    const s = this.storageOf(t, 'reshape');
    s.refs++;
    this.#liveTensors++;
    return new Tensor(this, t.dataId, shape, t.dtype, t.blockSize);
  }

  storageBytes(dtype: DType, size: number, blockSize?: number): number {
    const format = formatOf(dtype);
    // WebGPU binds f32 words; the host modes keep byte pairs in 16-bit words (see storage.ts).
    const wordBytes = format === 'value' || this.#device instanceof WebGpuDevice ? 4 : 2;
    const scales = isQuantized(dtype) ? Math.ceil(size / (blockSize ?? size)) * 4 : 0;
    return wordsOf(format, size) * wordBytes + scales;
  }

  release(dataId: DataId): void {
    const s = this.#store.get(dataId);
    if (!s) return;
    this.#liveTensors--;
    if (--s.refs === 0) {
      this.#store.delete(dataId);
      freeStorage(this.#device, s);
    }
  }

  memory(): MemoryReport {
    let bytes = 0;
    let buffers = 0;
    for (const s of this.#store.values()) {
      bytes += storageBytes(s);
      buffers += storageBufferCount(s);
    }
    return { bytesAllocated: bytes, liveBuffers: buffers, liveTensors: this.#liveTensors };
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    for (const s of this.#store.values()) freeStorage(this.#device, s);
    this.#store.clear();
    this.#liveTensors = 0;
    if (this.#dummy) this.#device.free(this.#dummy);
    this.#dummy = null;
    for (const value of this.#cache.values()) {
      const destroy: unknown = typeof value === 'object' && value !== null ? Reflect.get(value, 'destroy') : undefined;
      if (typeof destroy === 'function') Reflect.apply(destroy, value, []);
    }
    this.#cache.clear();
    this.#runtime.destroy();
    await this.#gpu.destroy();
  }

  // --- extension API -----------------------------------------------------------------------------

  /**
   * A gpu.js kernel compiled once per backend under `key`, run on tensors. See
   * ARCHITECTURE.md, "Writing a gpu.js kernel for attnkit".
   */
  kernel<P extends GpujsKernelSpec['params']>(key: string, fn: (...args: never[]) => number, spec: GpujsKernelSpec<P>): GpujsKernel<P> {
    this.assertLive('GpujsBackend.kernel');
    return createGpujsKernel(this, key, fn, spec);
  }

  /** WebGPU access (the device and tensors' buffers) in the webgpu mode, else null. */
  get webgpu(): WebGpuAccess | null {
    return this.#webgpu;
  }

  /**
   * A per-backend object built once by `create` (a compute pipeline, a lookup table, …). If
   * it has a `destroy()` method it is called when the backend is disposed.
   */
  cached<T>(key: string, create: () => T): T {
    this.assertLive('GpujsBackend.cached');
    if (this.#cache.has(key)) {
      const value: unknown = this.#cache.get(key);
      return narrow<T>(value);
    }
    const value = create();
    this.#cache.set(key, value);
    return value;
  }

  /** Kernels gpu.js moved to its cpu backend on this backend, with the reasons. */
  kernelFallbacks(): ReadonlyMap<string, string> {
    return this.#runtime.fallbacks;
  }

  /** Compiled kernels so far (one per kernel key). */
  get compiledKernelCount(): number {
    return this.#runtime.size;
  }

  /** webasm: the WebAssembly modules (and memories) gpu.js holds for this backend's kernels. */
  get wasmModules(): WasmModuleReport {
    return this.#runtime.wasmModules;
  }

  // --- internals shared with the kernel implementations -------------------------------------------

  /** @internal */
  get device(): Device {
    return this.#device;
  }

  /** @internal */
  get gridLimits(): GridLimits {
    return this.#limits;
  }

  /** @internal Runs a kernel spec; the output is a fresh device array of grid-size words. */
  async run(spec: KernelSpec, args: Readonly<Record<string, KernelArg>>, grid: OutputGrid, kind: 'f32' | 'u16' = 'f32'): Promise<DeviceArray> {
    this.assertLive(spec.key);
    try {
      return await this.#runtime.run(spec, args, grid, kind);
    } catch (error) {
      this.assertLive(spec.key, error); // a device lost during the run: say so
      throw error;
    }
  }

  /** @internal The storage behind a tensor of this backend. */
  storageOf(t: Tensor, fn: string): Storage {
    if (this.#lost !== null) this.assertLive(fn);
    if (t.backend !== this) throw new BackendError({ fn, expected: `a tensor of ${this.info.name}`, got: `a tensor of ${t.backend.info.name}` });
    t.assertAlive(fn);
    const s = this.#store.get(t.dataId);
    if (!s) throw new BackendError({ fn, expected: 'live storage', got: 'storage freed by backend.dispose()' });
    return s;
  }

  /** @internal The one chunk of an unsplit tensor (a one-word placeholder for an empty one). */
  chunkOf(t: Tensor, fn: string): Chunk {
    const s = this.storageOf(t, fn);
    if (s.chunks.length > 1) {
      throw new BackendError({
        fn,
        expected: `an unsplit tensor (this kernel does not take tensors split across buffers)`,
        got: `${t.toString()} split into ${s.chunks.length} buffers by the ${this.info.maxBindingBytes}-byte binding limit`,
      });
    }
    return s.chunks[0] ?? { start: 0, length: 0, words: this.dummy, scales: this.dummy };
  }

  /** @internal The words of an unsplit tensor. */
  arrayOf(t: Tensor, fn: string): DeviceArray {
    return this.chunkOf(t, fn).words;
  }

  /** @internal A one-word array bound where a kernel parameter is unused. */
  get dummy(): DeviceArray {
    this.#dummy ??= this.#device.alloc(1, 'f32');
    return this.#dummy;
  }

  /** @internal Wraps a kernel output holding `shape`'s values as a tensor (f32 or i32). */
  wrap(words: DeviceArray, shape: Shape, dtype: 'f32' | 'f16' | 'bf16' | 'i32' = 'f32'): Tensor {
    if (words === this.#dummy) throw new Error('the placeholder array cannot become a tensor');
    const size = sizeOf(shape);
    if (size === 0) {
      this.#device.free(words);
      return this.zeroSized(shape, dtype);
    }
    return this.adoptStorage({ dtype, format: 'value', size, blockSize: undefined, chunks: [{ start: 0, length: size, words, scales: null }], refs: 1 }, shape);
  }

  /** @internal A tensor of `shape` whose size is 0 (no device memory). */
  zeroSized(shape: Shape, dtype: DType = 'f32', blockSize?: number): Tensor {
    return this.adoptStorage({ dtype, format: formatOf(dtype), size: 0, blockSize, chunks: [], refs: 1 }, shape);
  }

  /** @internal Registers storage made by a kernel as a new tensor. */
  adoptStorage(storage: Storage, shape: Shape): Tensor {
    this.assertLive('GpujsBackend');
    const dataId: DataId = { id: this.#nextId++ };
    this.#store.set(dataId, storage);
    this.#liveTensors++;
    return new Tensor(this, dataId, shape, storage.dtype, storage.blockSize);
  }

  private assertLive(fn: string, cause?: unknown): void {
    if (this.#disposed) throw new BackendError({ fn, expected: 'a live backend', got: `${this.info.name} after dispose()` });
    if (this.#lost !== null) {
      throw new BackendError(
        { fn, expected: 'a live GPU device', got: `${this.info.name}'s device ${this.#lost} (create a new backend)` },
        cause === undefined ? undefined : { cause },
      );
    }
  }
}

/** True for a GpujsBackend from any copy of this package. */
export function isGpujsBackend(backend: Backend): backend is GpujsBackend {
  return GPUJS_BACKEND in backend;
}

/** Values put in the cache by `cached<T>` come back as T: the caller's key owns one type. */
function narrow<T>(value: unknown): T {
  return value as T;
}
