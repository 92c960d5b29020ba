// The one place that talks to gpu.js. Its typings cover the classic API only (the WebGPU
// context, buffer handles and the string-source kernel path are untyped), so the parts used
// here are narrowed with runtime checks instead of casts.
/// <reference types="@webgpu/types" />

import * as gpujs from 'gpu.js';
import type { GpujsMode } from './modes.js';

/** gpu.js argument types attnkit kernels use. */
export type GpujsArgType = 'Array' | 'Integer' | 'Float';

export interface GpujsKernelSettings {
  readonly output: readonly number[];
  readonly argumentTypes: Readonly<Record<string, GpujsArgType>>;
  readonly constants?: Readonly<Record<string, number | Float32Array>>;
  /** Scalar helper functions (gpu.js does not pass arrays to helpers). */
  readonly functions?: readonly ((...args: number[]) => number)[];
}

/** A compiled gpu.js kernel (the run shortcut), seen through what attnkit uses. */
export interface GpujsKernelHandle {
  /** Runs with positional arguments; resolves to the pipeline result of the mode. */
  call(args: readonly unknown[]): Promise<unknown>;
  setOutput(output: readonly number[]): void;
  /** gpu.js' kernel object behind the shortcut (it changes if gpu.js falls back to cpu). */
  impl(): object | null;
  /** Why gpu.js moved this kernel to its cpu backend, or null. */
  fallbackReason(): string | null;
  /** The mode of the kernel that actually runs. */
  runningMode(): string;
  /**
   * webasm: the size signatures whose WebAssembly module (each with its own
   * WebAssembly.Memory) gpu.js keeps for this kernel, oldest first; empty on other modes.
   */
  moduleSignatures(): string[];
  /** webasm: the size signature of the latest call, or null. */
  activeSignature(): string | null;
  /** webasm: drops the module of one size signature (gpu.js assembles it again when needed). */
  releaseModule(signature: string): boolean;
  destroy(): void;
}

export interface GpujsInstance {
  createKernel(source: string, settings: GpujsKernelSettings): GpujsKernelHandle;
  destroy(): Promise<void>;
}

export function createGpu(mode: GpujsMode): GpujsInstance {
  const gpu = new gpujs.GPU({ mode });
  // WebGPU results stay in GPU buffers (pipeline handles); webasm and cpu return typed arrays
  // either way. The GL modes read each result back (pipeline off): their textures are not used
  // as attnkit storage yet, so a GL backend keeps tensors in host memory between kernels.
  const pipeline = mode === 'webgpu' || mode === 'webasm' || mode === 'cpu';
  return {
    createKernel(source, settings) {
      const kernelSettings = {
        output: [...settings.output],
        argumentTypes: { ...settings.argumentTypes },
        ...(settings.constants ? { constants: { ...settings.constants } } : {}),
        pipeline,
        immutable: true,
        dynamicOutput: true,
        dynamicArguments: true,
        asyncMode: true,
        precision: 'single' as const,
        tactic: 'precision' as const,
      };
      // Helpers go in as source text (gpu.js' Kernel.addFunction takes strings; its typings list
      // functions only), so their names can be made GLSL identifiers.
      if (settings.functions) Reflect.set(kernelSettings, 'functions', settings.functions.map((f) => identifiersForGlsl(f.toString())));
      const shortcut = gpu.createKernel(source, kernelSettings);
      // Dynamic loop bounds are capped by loopMaxIterations (default 1000); attnkit kernels
      // loop over whole rows, so lift the cap (the loops end on their own conditions).
      shortcut.setLoopMaxIterations(2 ** 30);
      const impl = (): object | null => {
        const k: unknown = Reflect.get(shortcut, 'kernel');
        return typeof k === 'object' && k !== null ? k : null;
      };
      return {
        call: async (args) => {
          // Under asyncMode every gpu.js mode returns a Promise of its pipeline result.
          const result: unknown = Reflect.apply(shortcut, undefined, [...args]);
          const value: unknown = result instanceof Promise ? await result : result;
          return value;
        },
        setOutput: (output) => {
          shortcut.setOutput([...output]);
        },
        impl,
        fallbackReason: () => {
          const k = impl();
          const reason: unknown = k ? Reflect.get(k, 'fallbackReason') : null;
          return typeof reason === 'string' ? reason : null;
        },
        runningMode: () => {
          const k = impl();
          const ctor: unknown = k ? Reflect.get(k, 'constructor') : null;
          const m: unknown = typeof ctor === 'function' ? Reflect.get(ctor, 'mode') : null;
          return typeof m === 'string' ? m : 'unknown';
        },
        moduleSignatures: () => {
          const cache = moduleCacheOf(impl());
          return cache ? [...cache.keys()] : [];
        },
        activeSignature: () => {
          const k = impl();
          const active: unknown = k ? Reflect.get(k, '_active') : null;
          const signature: unknown = typeof active === 'object' && active !== null ? Reflect.get(active, 'sizeSignature') : null;
          return typeof signature === 'string' ? signature : null;
        },
        releaseModule: (signature) => {
          const k = impl();
          const cache = moduleCacheOf(k);
          const release: unknown = k ? Reflect.get(k, '_releaseEntry') : null;
          const entry: unknown = cache?.get(signature);
          if (!k || !cache || entry === undefined || typeof release !== 'function') return false;
          // gpu.js' own LRU eviction: out of the cache, then scrubbed (a shared entry after the
          // threaded runs queued on it settle), so nothing references its memory any more
          cache.delete(signature);
          Reflect.apply(release, k, [entry]);
          // gpu.js reuses its active module while the signature stays the same; a released one
          // must be assembled again
          if (Reflect.get(k, '_active') === entry) Reflect.set(k, '_active', null);
          return true;
        },
        destroy: () => {
          shortcut.destroy();
        },
      };
    },
    destroy: () => gpu.destroy(),
  };
}

/**
 * The per-size-signature module cache of a gpu.js webasm kernel (a Map in LRU order), or null
 * for other kernels. gpu.js 2.24 keeps eight per kernel and frees them only by that LRU or by
 * destroy(); attnkit bounds them per backend (runtime.ts), reaching in here only.
 */
function moduleCacheOf(kernel: object | null): Map<string, unknown> | null {
  const cache: unknown = kernel ? Reflect.get(kernel, '_moduleCache') : null;
  return isMap(cache) ? cache : null;
}

function isMap(value: unknown): value is Map<string, unknown> {
  return value instanceof Map;
}

/**
 * A kernel or helper source with `$` spelled `_S`: bundlers rename a top-level function whose
 * name another module also uses (Rollup: `idiv` → `idiv$1`, in the helper and at every call),
 * and GLSL identifiers cannot hold `$`. Kernel sources have no other use for the character.
 */
export function identifiersForGlsl(source: string): string {
  return source.replaceAll('$', '_S');
}

/** gpu.js' shared WebGPU context (`{ adapter, device, isLost }`), acquired once per process. */
export async function acquireWebGpuContext(): Promise<unknown> {
  const context: unknown = Reflect.get(gpujs, 'WebGPUContext');
  const acquire: unknown = typeof context === 'function' ? Reflect.get(context, 'acquire') : undefined;
  if (typeof acquire !== 'function') throw new Error('this gpu.js build has no WebGPU backend (WebGPUContext.acquire)');
  const result: unknown = await Reflect.apply(acquire, context, []);
  return result;
}

/** Whether gpu.js' webasm kernels can split across worker threads here (SharedArrayBuffer). */
export function webAssemblyThreads(): boolean {
  return Reflect.get(gpujs.WebAssemblyKernel, 'isThreadsSupported') === true;
}

/** The largest texture side of gpu.js' GL kernels in `mode` (its cached feature probe). */
export function glMaxTextureSize(mode: 'webgl2' | 'webgl' | 'headlessgl'): number {
  const kernel: unknown = Reflect.get(gpujs, mode === 'webgl2' ? 'WebGL2Kernel' : mode === 'webgl' ? 'WebGLKernel' : 'HeadlessGLKernel');
  const features: unknown = typeof kernel === 'function' ? Reflect.get(kernel, 'features') : null;
  const side: unknown = typeof features === 'object' && features !== null ? Reflect.get(features, 'maxTextureSize') : null;
  if (typeof side !== 'number' || !(side > 0)) throw new Error(`gpu.js reports no maxTextureSize for ${mode}`);
  return side;
}

/** gpu.js' WebGPU pipeline-result class: a GPU buffer a kernel may take as an Array argument. */
export function makeWebGpuHandle(buffer: GPUBuffer, words: number, context: object): object {
  const ctor: unknown = Reflect.get(gpujs, 'WebGPUBufferResult');
  if (typeof ctor !== 'function') throw new Error('this gpu.js build has no WebGPUBufferResult');
  const handle: unknown = Reflect.construct(ctor, [{ buffer, output: [words], componentCount: 1, context, kernel: null }]);
  if (typeof handle !== 'object' || handle === null) throw new Error('WebGPUBufferResult constructor returned no object');
  return handle;
}

/** The GPU buffer inside a WebGPU pipeline result, or null for anything else. */
export function bufferOfWebGpuResult(value: unknown): GPUBuffer | null {
  if (typeof value !== 'object' || value === null || Reflect.get(value, 'type') !== 'WebGPUBuffer') return null;
  const buffer: unknown = Reflect.get(value, 'buffer');
  return isGpuBuffer(buffer) ? buffer : null;
}

/**
 * Takes sole ownership of a WebGPU kernel's latest output buffer. gpu.js keeps a reference
 * to it until the kernel runs again (and frees it then); attnkit hands the buffer to a
 * tensor instead, so the buffer lives exactly as long as the tensor and `memory()` stays exact.
 */
export function detachWebGpuOutput(kernelImpl: object | null, buffer: GPUBuffer): void {
  if (!kernelImpl || Reflect.get(kernelImpl, 'outputBuffer') !== buffer) return;
  Reflect.set(kernelImpl, 'outputBuffer', null);
  Reflect.set(kernelImpl, 'bindGroupDirty', true);
}

function isGpuBuffer(value: unknown): value is GPUBuffer {
  return typeof value === 'object' && value !== null && typeof Reflect.get(value, 'destroy') === 'function' && typeof Reflect.get(value, 'size') === 'number';
}
