// The extension API: how other packages run their own kernels on a gpu.js backend.
//
// - `backend.kernel(key, fn, spec)`: a gpu.js kernel compiled once per backend and key, run on
//   tensors with `run(args, { grid, shape })`, returning a new tensor that stays on the device.
// - `backend.webgpu`: in the webgpu mode, the GPUDevice and each tensor's GPUBuffer, for
//   hand-written WGSL compute pipelines (cache them with `backend.cached`).
/// <reference types="@webgpu/types" />

import { BackendError, ConfigError, DTypeError, ShapeError, formatShape } from '../errors.js';
import { type Shape, sizeOf } from '../shape.js';
import { Tensor } from '../tensor.js';
import type { GpujsBackend } from './backend.js';
import type { WebGpuDevice } from './device.js';
import type { KernelArg, KernelSpec, OutputGrid, ParamKind } from './runtime.js';

/** Parameter kinds of a custom kernel: a tensor (its words), its block scales, an i32, an f32. */
export type GpujsParamKind = 'tensor' | 'scales' | 'int' | 'float';

export interface GpujsKernelSpec<P extends Readonly<Record<string, GpujsParamKind>> = Readonly<Record<string, GpujsParamKind>>> {
  /** The kernel's parameters with their kinds, in the order of the function's parameters. */
  readonly params: P;
  /** Constants (`this.constants.name`): numbers or small lookup tables. */
  readonly constants?: Readonly<Record<string, number | Float32Array>>;
  /** Scalar helper functions the kernel calls (gpu.js passes no arrays to helpers). */
  readonly functions?: readonly ((...args: number[]) => number)[];
  /** Rank of the output grid (default 1). */
  readonly rank?: 1 | 2 | 3;
}

/** Argument values: tensors for 'tensor' and 'scales' parameters, numbers for 'int' and 'float'. */
export type GpujsKernelArgs<P extends Readonly<Record<string, GpujsParamKind>>> = {
  readonly [K in keyof P]: P[K] extends 'tensor' | 'scales' ? Tensor : number;
};

export interface GpujsRunOptions {
  /** gpu.js output grid [x] / [x, y] / [x, y, z], x fastest; its size must equal the shape's. */
  readonly grid: OutputGrid;
  /** Shape of the output tensor (row-major over the grid). */
  readonly shape: Shape;
  /** `i32` when the kernel returns integers (stored as f32 numbers). Default `f32`. */
  readonly dtype?: 'f32' | 'i32';
}

/** A custom kernel bound to one backend. */
export interface GpujsKernel<P extends Readonly<Record<string, GpujsParamKind>>> {
  readonly key: string;
  /** Runs the kernel: tensors bind their words (f32 values, or byte pairs for int8/fp8). */
  run(args: GpujsKernelArgs<P>, options: GpujsRunOptions): Promise<Tensor>;
}

const KIND: Readonly<Record<GpujsParamKind, ParamKind>> = { tensor: 'array', scales: 'array', int: 'int', float: 'float' };

export function createGpujsKernel<P extends Readonly<Record<string, GpujsParamKind>>>(
  backend: GpujsBackend,
  key: string,
  fn: (...args: never[]) => number,
  spec: GpujsKernelSpec<P>,
): GpujsKernel<P> {
  if (typeof key !== 'string' || key.length === 0) throw new ConfigError({ fn: 'GpujsBackend.kernel', expected: 'a non-empty kernel key', got: String(key) });
  const params: Record<string, ParamKind> = {};
  for (const [name, kind] of Object.entries(spec.params)) params[name] = KIND[kind];
  const kernelSpec: KernelSpec = {
    key: `ext:${key}`,
    fn,
    params,
    rank: spec.rank ?? 1,
    ...(spec.constants ? { constants: spec.constants } : {}),
    ...(spec.functions ? { functions: spec.functions } : {}),
  };
  return {
    key,
    async run(args, options) {
      const fnName = `kernel(${key}).run`;
      const size = sizeOf(options.shape);
      const gridSize = options.grid.reduce((a: number, b: number) => a * b, 1);
      if (gridSize !== size) {
        throw new ShapeError({ fn: fnName, expected: `a grid of ${size} threads for shape ${formatShape(options.shape)}`, got: `grid [${options.grid.join(', ')}]` });
      }
      const bound: Record<string, KernelArg> = {};
      for (const [name, kind] of Object.entries(spec.params)) {
        const value: unknown = args[name];
        if (kind === 'int' || kind === 'float') {
          if (typeof value !== 'number' || !Number.isFinite(value) || (kind === 'int' && !Number.isInteger(value))) {
            throw new ConfigError({ fn: fnName, expected: `${name} to be a finite ${kind === 'int' ? 'integer' : 'number'}`, got: String(value) });
          }
          bound[name] = value;
          continue;
        }
        if (!isTensorOf(backend, value)) throw new BackendError({ fn: fnName, expected: `${name} to be a tensor of ${backend.info.name}`, got: describe(value) });
        const chunk = backend.chunkOf(value, fnName);
        if (kind === 'scales') {
          if (!chunk.scales) throw new DTypeError({ fn: fnName, expected: `${name} to be an int8 or fp8e4m3 tensor (it binds block scales)`, got: value.dtype });
          bound[name] = chunk.scales;
        } else {
          bound[name] = chunk.words;
        }
      }
      const out = await backend.run(kernelSpec, bound, options.grid);
      return backend.wrap(out, options.shape, options.dtype ?? 'f32');
    },
  };
}

/** WebGPU access for hand-written WGSL (webgpu mode only). */
export interface WebGpuAccess {
  readonly device: GPUDevice;
  /**
   * The storage buffer of an unsplit tensor: `array<f32>` words as in the storage table
   * (values; byte pairs for int8/fp8). Read it freely; write only tensors you created for the
   * purpose (outputs), since reshape views share storage.
   */
  buffer(t: Tensor): GPUBuffer;
  /** The f32 block-scale buffer of an unsplit int8/fp8e4m3 tensor. */
  scalesBuffer(t: Tensor): GPUBuffer;
  /**
   * A zero-filled tensor to use as a pipeline's output (its buffer is `buffer(t)`): f32, or i32
   * (integers stored as f32 numbers, as every i32 tensor of this backend).
   */
  allocate(shape: Shape, dtype?: 'f32' | 'i32'): Tensor;
}

export function createWebGpuAccess(backend: GpujsBackend, device: WebGpuDevice): WebGpuAccess {
  const gpuArray = (t: Tensor, fn: string, part: 'words' | 'scales'): GPUBuffer => {
    const chunk = backend.chunkOf(t, fn);
    const array = part === 'words' ? chunk.words : chunk.scales;
    if (!array) throw new DTypeError({ fn, expected: 'an int8 or fp8e4m3 tensor', got: t.dtype });
    if (array.kind !== 'gpu') throw new BackendError({ fn, expected: 'a tensor in GPU memory', got: 'host memory' });
    return array.buffer;
  };
  return {
    device: device.gpu,
    buffer: (t) => gpuArray(t, 'webgpu.buffer', 'words'),
    scalesBuffer: (t) => gpuArray(t, 'webgpu.scalesBuffer', 'scales'),
    allocate: (shape, dtype = 'f32') => (sizeOf(shape) === 0 ? backend.zeroSized(shape, dtype) : backend.wrap(device.alloc(sizeOf(shape)), shape, dtype)),
  };
}

function isTensorOf(backend: GpujsBackend, value: unknown): value is Tensor {
  return value instanceof Tensor && value.backend === backend;
}

function describe(value: unknown): string {
  if (value instanceof Tensor) return `${value.toString()}${value.isDisposed ? ' (disposed)' : ''}`;
  if (typeof value === 'object' && value !== null) return `a ${value.constructor.name}`;
  return typeof value;
}
