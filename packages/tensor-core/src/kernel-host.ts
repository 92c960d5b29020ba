// The part of a gpu.js backend that other packages' fused kernels use: the kernel extension API
// (`backend.kernel(key, fn, spec)`, ARCHITECTURE.md "Writing a gpu.js kernel for attnkit"),
// and the WebGPU access of hand-written WGSL kernels, described structurally so that importing
// it never loads gpu.js for users who run on the CPU.
/// <reference types="@webgpu/types" />

import type { Backend } from './backend.js';
import type { WebGpuAccess } from './gpujs/extension.js';
import type { Tensor } from './tensor.js';

export type GpujsParamKind = 'tensor' | 'scales' | 'int' | 'float';

export interface GpujsKernelSpecLike {
  readonly params: Readonly<Record<string, GpujsParamKind>>;
  readonly functions?: readonly ((...args: number[]) => number)[];
  readonly rank?: 1 | 2 | 3;
}

export interface GpujsKernelLike {
  run(args: Readonly<Record<string, Tensor | number>>, options: { readonly grid: readonly [number] | readonly [number, number]; readonly shape: readonly number[] }): Promise<Tensor>;
}

export interface GpujsKernelHost extends Backend {
  kernel(key: string, fn: (...args: never[]) => number, spec: GpujsKernelSpecLike): GpujsKernelLike;
}

/** A gpu.js backend that runs other packages' kernels. */
export function isGpujsKernelHost(backend: Backend): backend is GpujsKernelHost {
  return backend.info.family === 'gpujs' && 'kernel' in backend && typeof backend.kernel === 'function';
}

/** gpu.js' kernel `this`. */
export interface Gpu {
  readonly thread: { readonly x: number; readonly y: number; readonly z: number };
}

/**
 * A bound array as a kernel sees it: f32 numbers by index. Loosely typed on purpose: kernel
 * sources are gpu.js' dialect (checked by compiling them on every mode), and with
 * `noUncheckedIndexedAccess` every read would otherwise be `number | undefined`.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Arr = any;

/**
 * A gpu.js backend in WebGPU mode, for hand-written WGSL kernels of other packages: its device
 * and the tensors' buffers (`webgpu`), and `cached()` for per-backend pipelines.
 */
export interface WebGpuHost extends Backend {
  readonly webgpu: WebGpuAccess;
  cached<T>(key: string, create: () => T): T;
}

/** A gpu.js backend whose WebGPU device WGSL kernels can use (checked structurally). */
export function isWebGpuHost(backend: Backend): backend is WebGpuHost {
  return backend.info.family === 'gpujs' && 'webgpu' in backend && backend.webgpu !== null && 'cached' in backend && typeof backend.cached === 'function';
}

/**
 * The device's subgroup size when the `subgroups` feature is enabled and the width is fixed,
 * else 0: kernels written for one width take their subgroup-free path on devices that vary it
 * (or do not say).
 */
export function fixedSubgroupSize(device: GPUDevice): number {
  if (!device.features.has('subgroups')) return 0;
  const min = device.adapterInfo.subgroupMinSize ?? 0;
  const max = device.adapterInfo.subgroupMaxSize ?? 0;
  return min > 0 && min === max ? min : 0;
}

/**
 * Query heads one WGSL decode workgroup takes (a divisor of the group): as many as keep a lane's
 * query slices and accumulators (`vec4sPerHead` each) within 6 vec4 registers. Registers, not
 * the keys each tile re-reads from L2, set the pace: on an H100 at G = 16, d = 192/128, all 16
 * heads per workgroup spilled (120 GB/s); tiles of 8 ran at 228 GB/s, tiles of 4 at 545 and
 * tiles of 2 at 674 (dense GQA decode, 8 sequences × 4 kv heads at 64K; NSA's step 0.648 → 0.460
 * ms); tiles of 1 gave no more (666 GB/s, NSA 0.488 ms). BENCHMARKS.md, issue 13, session 6.
 */
export function decodeHeadTile(group: number, vec4sPerHead: number): number {
  return group % 2 === 0 && 2 * vec4sPerHead <= 6 ? 2 : 1; // a head holds ≥ 2 vec4s: at most 2 fit
}
