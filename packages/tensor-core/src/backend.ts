import type { DType } from './dtype.js';
import type { KernelTable } from './kernels.js';
import type { Shape } from './shape.js';
import type { Tensor } from './tensor.js';

/** Opaque storage key. Backends map it to their own buffers; nothing else looks inside. */
export interface DataId {
  readonly id: number;
}

export type DeviceKind = 'cpu' | 'gpu';

/** Backend families other packages can target with fused kernels. */
export type BackendFamily = 'cpu' | 'gpujs';

export interface BackendInfo {
  /** Stable name: `cpu`, `gpujs-webgpu`, `gpujs-webgl2`, `gpujs-webgl`, `gpujs-headlessgl`, `gpujs-webasm`, `gpujs-cpu`. */
  readonly name: string;
  readonly family: BackendFamily;
  readonly deviceKind: DeviceKind;
  /** Largest single buffer the device accepts, in bytes. */
  readonly maxBufferBytes: number;
  /** Largest buffer one kernel may bind (WebGPU maxStorageBufferBindingSize), in bytes. */
  readonly maxBindingBytes: number;
  /** Whether kernels can compute in f16 (WebGPU `shader-f16`); storage in f16 works everywhere. */
  readonly f16Compute: boolean;
  /** The adapter or runtime in words, e.g. `nvidia | hopper | NVIDIA H100 80GB HBM3`. */
  readonly adapter: string;
}

export interface MemoryReport {
  /** Bytes of live storage (payload plus quantisation scales). */
  readonly bytesAllocated: number;
  /** Live storage buffers (views made by reshape share one). */
  readonly liveBuffers: number;
  /** Live tensor handles. */
  readonly liveTensors: number;
}

/** Host data accepted by `upload`, matching the dtype: f32 → Float32Array, f16/bf16 → Uint16Array bits, i32 → Int32Array. */
export type HostData = Float32Array | Uint16Array | Int32Array;

/**
 * A compute backend. Passed explicitly everywhere (there is no global engine): tensors know
 * their backend, and creation functions take one.
 *
 * `specVersion` lets packages that add fused kernels check the contract they were built for.
 */
export interface Backend {
  readonly specVersion: 1;
  readonly info: BackendInfo;
  readonly kernels: KernelTable;
  readonly isDisposed: boolean;

  /** Copies host values into a new tensor. Quantised dtypes are produced with `Cast`, not here. */
  upload(values: HostData, shape: Shape, dtype: 'f32' | 'f16' | 'bf16' | 'i32'): Tensor;
  /** A zero-filled tensor (quantised dtypes get zero codes and unit scales). */
  zeros(shape: Shape, dtype: DType, blockSize?: number): Tensor;
  /** Values widened to f32. */
  read(t: Tensor): Promise<Float32Array>;
  readInt(t: Tensor): Promise<Int32Array>;
  /** A new handle on the same storage with another shape of the same size (reshape). */
  share(t: Tensor, shape: Shape): Tensor;
  /**
   * Bytes this backend allocates for a tensor of `size` elements stored as `dtype` (block scales
   * included). Backends that store every dtype compactly return `storageBytes()` from the dtype
   * module; gpu.js keeps 16-bit floats as f32 words, so its answer is larger. Caches report
   * their `nbytes` with it, so the figure is what the device really holds.
   */
  storageBytes(dtype: DType, size: number, blockSize?: number): number;
  /** Drops one handle's reference to its storage; frees it at zero. Called by Tensor.dispose. */
  release(dataId: DataId): void;
  memory(): MemoryReport;
  /** Frees every buffer this backend still holds. Tensors of a disposed backend throw on use. */
  dispose(): Promise<void>;
}
