import type { Backend, BackendInfo, DataId, HostData, MemoryReport } from '../backend.js';
import { type DType, isQuantized, storageBytes } from '../dtype.js';
import { BackendError, DTypeError, ShapeError, formatShape } from '../errors.js';
import type { KernelTable } from '../kernels.js';
import { type Shape, assertValidShape, sizeOf } from '../shape.js';
import { Tensor } from '../tensor.js';
import { cpuKernels } from './kernels.js';
import { type CpuStorage, decodeAll, storageByteLength } from './storage.js';
import { WasmHeap, wasmSimdUnsupportedReason } from './wasm/heap.js';
import { WasmThreadPool, defaultThreadCount, threadsUnavailableReason } from './wasm/threads.js';

const CPU_BACKEND = Symbol.for('attnkit.backend.cpu');

const CPU_INFO: BackendInfo = {
  name: 'cpu',
  family: 'cpu',
  deviceKind: 'cpu',
  maxBufferBytes: 2 ** 32,
  maxBindingBytes: 2 ** 32,
  f16Compute: false,
  adapter: 'JavaScript typed arrays',
};

interface Entry {
  readonly storage: CpuStorage;
  refs: number;
  /** Storage inside the shared WebAssembly heap: given back when the last reference goes. */
  readonly resident?: { release(): void };
}

/**
 * f32 tensors of at least this many bytes that the backend creates (`upload`, `zeros`: inputs,
 * weights, KV-cache storage, and the results of MatMul, f32 Linear, Softmax and the attention kernels,
 * which the SIMD kernels write in place) live in the shared WebAssembly heap when it has one, so
 * SIMD kernels read them in place; smaller ones and other kernels' outputs are JavaScript arrays.
 */
const RESIDENT_MIN_BYTES = 1 << 20;

/** Options of `new CpuBackend(...)`. */
export interface CpuBackendOptions {
  /**
   * Run MatMul, Linear and fused kernels of other packages through WebAssembly SIMD where the
   * runtime has it (default true). false keeps every kernel in plain TypeScript.
   */
  readonly simd?: boolean;
  /**
   * Threads the SIMD kernels may use, the calling one included (default: the cores available,
   * at most 8). More than 1 needs SharedArrayBuffer and workers (Node's worker_threads, or a
   * cross-origin-isolated page); without them the backend runs on one thread.
   */
  readonly threads?: number;
  /**
   * Let the SIMD kernels use relaxed SIMD's fused multiply-add (`f32x4.relaxed_madd`) where the
   * engine validates it (default true; Node 20 needs `--experimental-wasm-relaxed-simd`). false
   * keeps mul + add everywhere.
   */
  readonly fma?: boolean;
}

/**
 * The CPU backend: typed arrays in the storage dtype. Its kernels are the plain TypeScript
 * reference implementations (register-blocked loops, no per-element allocation), the oracle
 * every other backend is tested against; MatMul and f32 Linear — and fused kernels of other
 * packages, through `wasm` — run WebAssembly SIMD kernels when the runtime supports them.
 * Other packages' fused CPU kernels use `view`, `storageOf` and `adopt` to work on its arrays
 * directly.
 */
export class CpuBackend implements Backend {
  readonly [CPU_BACKEND] = true;
  readonly specVersion = 1;
  readonly info: BackendInfo;
  readonly kernels: KernelTable;
  /**
   * The WebAssembly memory and SIMD kernels of this backend, or null (then `wasmUnavailable`
   * says why): `new CpuBackend({ simd: false })`, or a runtime without WebAssembly SIMD.
   */
  readonly wasm: WasmHeap | null;
  readonly wasmUnavailable: string | null;
  /** Worker threads over the shared heap, or null (one thread: see `threadsUnavailable`). */
  readonly wasmThreads: WasmThreadPool | null;
  readonly threadsUnavailable: string | null;
  readonly #store = new Map<DataId, Entry>();
  #nextId = 1;
  #liveTensors = 0;
  #disposed = false;

  constructor(options: CpuBackendOptions = {}) {
    this.wasmUnavailable = options.simd === false ? 'SIMD kernels switched off (simd: false)' : wasmSimdUnsupportedReason();
    const threads = Math.max(1, Math.floor(options.threads ?? defaultThreadCount()));
    this.threadsUnavailable = this.wasmUnavailable ?? (threads === 1 ? 'one thread requested (or one core available)' : threadsUnavailableReason());
    this.wasm = this.wasmUnavailable === null ? new WasmHeap({ shared: this.threadsUnavailable === null, ...(options.fma === false ? { relaxedSimd: false } : {}) }) : null;
    this.wasmThreads = this.wasm && this.threadsUnavailable === null ? new WasmThreadPool(this.wasm, threads) : null;
    const simd = `WebAssembly SIMD${this.wasm?.relaxedSimd ? ' (relaxed FMA)' : ''}${this.wasmThreads ? `, ${this.wasmThreads.size} threads` : ''}`;
    this.info = { ...CPU_INFO, adapter: this.wasm ? `JavaScript typed arrays, ${simd}` : 'JavaScript typed arrays' };
    this.kernels = cpuKernels(this);
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  upload(values: HostData, shape: Shape, dtype: 'f32' | 'f16' | 'bf16' | 'i32'): Tensor {
    assertValidShape(shape, 'upload');
    if (values.length !== sizeOf(shape)) {
      throw new ShapeError({ fn: 'upload', expected: `${sizeOf(shape)} values for shape ${formatShape(shape)}`, got: `${values.length} values` });
    }
    switch (dtype) {
      case 'f32':
        if (!(values instanceof Float32Array)) throw new DTypeError({ fn: 'upload', expected: 'a Float32Array for f32', got: values.constructor.name });
        return this.#adoptF32(values.length, shape, values);
      case 'i32':
        if (!(values instanceof Int32Array)) throw new DTypeError({ fn: 'upload', expected: 'an Int32Array for i32', got: values.constructor.name });
        return this.adopt({ dtype, data: values.slice() }, shape);
      case 'f16':
      case 'bf16':
        if (!(values instanceof Uint16Array)) throw new DTypeError({ fn: 'upload', expected: `a Uint16Array of ${dtype} bits`, got: values.constructor.name });
        return this.adopt({ dtype, data: values.slice() }, shape);
    }
  }

  zeros(shape: Shape, dtype: DType, blockSize?: number): Tensor {
    assertValidShape(shape, 'zeros');
    const n = sizeOf(shape);
    switch (dtype) {
      case 'f32':
        return this.#adoptF32(n, shape, null);
      case 'i32':
        return this.adopt({ dtype, data: new Int32Array(n) }, shape);
      case 'f16':
      case 'bf16':
        return this.adopt({ dtype, data: new Uint16Array(n) }, shape);
      case 'int8':
      case 'fp8e4m3': {
        const block = blockSize ?? (shape[shape.length - 1] ?? 1);
        const scales = new Float32Array(Math.ceil(n / Math.max(block, 1))).fill(1);
        return dtype === 'int8'
          ? this.adopt({ dtype, data: new Int8Array(n), scales, blockSize: block }, shape)
          : this.adopt({ dtype, data: new Uint8Array(n), scales, blockSize: block }, shape);
      }
    }
  }

  read(t: Tensor): Promise<Float32Array> {
    const s = this.storageOf(t);
    const all = decodeAll(s);
    return Promise.resolve(all === s.data ? all.slice() : all);
  }

  readInt(t: Tensor): Promise<Int32Array> {
    const s = this.storageOf(t);
    if (s.dtype !== 'i32') throw new DTypeError({ fn: 'readInt', expected: 'an i32 tensor', got: s.dtype });
    return Promise.resolve(s.data.slice());
  }

  share(t: Tensor, shape: Shape): Tensor {
    const entry = this.#entry(t, 'reshape');
    entry.refs++;
    this.#liveTensors++;
    return new Tensor(this, t.dataId, shape, t.dtype, t.blockSize);
  }

  storageBytes(dtype: DType, size: number, blockSize?: number): number {
    return storageBytes(dtype, size, blockSize ?? size);
  }

  release(dataId: DataId): void {
    const entry = this.#store.get(dataId);
    if (!entry) return;
    this.#liveTensors--;
    if (--entry.refs === 0) {
      this.#store.delete(dataId);
      entry.resident?.release();
    }
  }

  memory(): MemoryReport {
    let bytes = 0;
    for (const { storage } of this.#store.values()) bytes += storageByteLength(storage);
    return { bytesAllocated: bytes, liveBuffers: this.#store.size, liveTensors: this.#liveTensors };
  }

  dispose(): Promise<void> {
    this.wasmThreads?.terminate();
    for (const entry of this.#store.values()) entry.resident?.release();
    this.#store.clear();
    this.#liveTensors = 0;
    this.#disposed = true;
    return Promise.resolve();
  }

  // --- host access for kernels -----------------------------------------------------------------

  /** The storage behind a tensor (any dtype). Throws if the tensor is disposed or foreign. */
  storageOf(t: Tensor): CpuStorage {
    return this.#entry(t, 'CpuBackend.storageOf').storage;
  }

  /** The f32 array behind an f32 tensor, without a copy. Kernels must not write to inputs. */
  view(t: Tensor): Float32Array {
    const s = this.storageOf(t);
    if (s.dtype !== 'f32') throw new DTypeError({ fn: 'CpuBackend.view', expected: 'an f32 tensor', got: s.dtype });
    return s.data;
  }

  /** The i32 array behind an i32 tensor, without a copy. */
  viewInt(t: Tensor): Int32Array {
    const s = this.storageOf(t);
    if (s.dtype !== 'i32') throw new DTypeError({ fn: 'CpuBackend.viewInt', expected: 'an i32 tensor', got: s.dtype });
    return s.data;
  }

  /** Wraps storage the caller just created (and no longer touches) as a new tensor. */
  adopt(storage: CpuStorage, shape: Shape): Tensor {
    return this.#adopt(storage, shape, undefined);
  }

  #adopt(storage: CpuStorage, shape: Shape, resident: Entry['resident']): Tensor {
    if (this.#disposed) throw new BackendError({ fn: 'CpuBackend', expected: 'a live backend', got: 'a disposed one' });
    const n = sizeOf(shape);
    if (storage.data.length !== n) {
      throw new ShapeError({ fn: 'CpuBackend.adopt', expected: `${n} elements for ${formatShape(shape)}`, got: String(storage.data.length) });
    }
    const dataId: DataId = { id: this.#nextId++ };
    this.#store.set(dataId, resident ? { storage, refs: 1, resident } : { storage, refs: 1 });
    this.#liveTensors++;
    const blockSize = isQuantized(storage.dtype) && 'blockSize' in storage ? storage.blockSize : undefined;
    return new Tensor(this, dataId, shape, storage.dtype, blockSize);
  }

  /** Wraps a fresh f32 array as a tensor (the common case for kernel outputs). */
  wrap(data: Float32Array, shape: Shape): Tensor {
    return this.adopt({ dtype: 'f32', data }, shape);
  }

  /**
   * An f32 tensor for a kernel's result that the kernel overwrites in full (MatMul, f32 Linear,
   * Softmax): like `zeros`, resident in the heap when large, but a resident one is not
   * zero-filled first (a pass over the whole result saved; 64 MiB took ~9 ms here). Its values
   * are unspecified until written.
   */
  output(shape: Shape): Tensor {
    assertValidShape(shape, 'output');
    return this.#adoptF32(sizeOf(shape), shape, null, false);
  }

  /** A new f32 tensor of n values (a copy of `values`, or zeros unless `zero` is false), resident in the heap when large. */
  #adoptF32(n: number, shape: Shape, values: Float32Array | null, zero = true): Tensor {
    const resident = 4 * n >= RESIDENT_MIN_BYTES ? (this.wasm?.allocResident(n, 'CpuBackend', { zero: zero && !values }) ?? null) : null;
    if (!resident) return this.adopt({ dtype: 'f32', data: values ? values.slice() : new Float32Array(n) }, shape);
    if (values) resident.data.set(values);
    return this.#adopt({ dtype: 'f32', data: resident.data }, shape, resident);
  }

  #entry(t: Tensor, fn: string): Entry {
    if (t.backend !== this) {
      throw new BackendError({ fn, expected: 'a tensor of this cpu backend', got: `a tensor of ${t.backend.info.name}` });
    }
    t.assertAlive(fn);
    const entry = this.#store.get(t.dataId);
    if (!entry) throw new BackendError({ fn, expected: 'live storage', got: 'storage freed by backend.dispose()' });
    return entry;
  }
}

/** True for a CpuBackend from any copy of this package. */
export function isCpuBackend(backend: Backend): backend is CpuBackend {
  return CPU_BACKEND in backend;
}
