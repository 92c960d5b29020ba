// Which gpu.js modes work here, and what it takes to start each one. Every probe either
// resolves to a description of the runtime or throws a BackendError whose `got` says why the
// mode is unavailable, so createBackend can report it in `passedOver`.
/// <reference types="@webgpu/types" />

import { GPU } from 'gpu.js';
import { acquireWebGpuContext as acquireGpujsWebGpu, glMaxTextureSize, webAssemblyThreads } from './gpujs-lib.js';
import type { BackendName } from '../create-backend.js';
import { BackendError } from '../errors.js';

/** The gpu.js modes attnkit runs on (`mode` of `new GPU({ mode })`). */
export type GpujsMode = 'webgpu' | 'webgl2' | 'webgl' | 'headlessgl' | 'webasm' | 'cpu';

export type GpujsBackendName = Exclude<BackendName, 'cpu'>;

export const MODE_OF_BACKEND: Readonly<Record<GpujsBackendName, GpujsMode>> = {
  'gpujs-webgpu': 'webgpu',
  'gpujs-webgl2': 'webgl2',
  'gpujs-webgl': 'webgl',
  'gpujs-headlessgl': 'headlessgl',
  'gpujs-webasm': 'webasm',
  'gpujs-cpu': 'cpu',
};

/** What a started mode offers. */
export interface ModeRuntime {
  readonly mode: GpujsMode;
  /** The adapter or runtime in words. */
  readonly adapter: string;
  /** Largest buffer one kernel may bind, in bytes (before any artificial lowering). */
  readonly maxBindingBytes: number;
  readonly maxBufferBytes: number;
  /** WebGPU only: the device gpu.js shares between its kernels. */
  readonly webgpu: WebGpuContextLike | null;
}

/** The `{ adapter, device }` pair of gpu.js' shared WebGPU context. */
export interface WebGpuContextLike {
  readonly adapter: GPUAdapter;
  readonly device: GPUDevice;
  readonly isLost: boolean;
}

/** Starts `mode` or throws a BackendError naming the reason it cannot run here. */
export async function startMode(name: GpujsBackendName): Promise<ModeRuntime> {
  const mode = MODE_OF_BACKEND[name];
  const fail = (why: string, cause?: unknown): never => {
    throw new BackendError({ fn: 'createGpujsBackend', expected: `gpu.js mode '${mode}' to start`, got: why }, cause === undefined ? undefined : { cause });
  };
  switch (mode) {
    case 'webgpu': {
      await installNodeWebGpu().catch((error: unknown) => fail(`no WebGPU implementation (${describe(error)})`, error));
      let context: WebGpuContextLike;
      try {
        context = await acquireWebGpuContext();
      } catch (error) {
        return fail(describe(error), error);
      }
      const { limits } = context.device;
      const info = context.adapter.info;
      const words = [info.vendor, info.architecture, info.device, info.description].filter((w) => typeof w === 'string' && w.length > 0);
      return {
        mode,
        adapter: words.length > 0 ? words.join(' | ') : 'WebGPU adapter (no adapter info)',
        maxBindingBytes: Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize),
        maxBufferBytes: limits.maxBufferSize,
        webgpu: context,
      };
    }
    case 'webasm': {
      if (!GPU.isWebAssemblySupported) return fail('no WebAssembly SIMD support in this runtime');
      const threads = webAssemblyThreads();
      return {
        mode,
        adapter: `WebAssembly f32x4 SIMD${threads ? ', worker threads' : ', single-threaded (no SharedArrayBuffer)'}`,
        // wasm32 addresses 4 GiB and gpu.js lays every argument and the output of a call
        // into one memory: a single binding is capped well below that.
        maxBindingBytes: 2 ** 30,
        maxBufferBytes: 2 ** 30,
        webgpu: null,
      };
    }
    case 'cpu':
      return { mode, adapter: 'gpu.js JavaScript kernels', maxBindingBytes: 2 ** 31, maxBufferBytes: 2 ** 31, webgpu: null };
    case 'webgl2':
    case 'webgl':
    case 'headlessgl': {
      if (mode === 'webgl2' && !GPU.isWebGL2Supported) return fail('WebGL2 is not available (it exists only in browsers)');
      if (mode === 'webgl' && !GPU.isWebGLSupported) return fail('WebGL is not available (it exists only in browsers)');
      if (mode === 'headlessgl' && !GPU.isHeadlessGLSupported) return fail('headless-gl (the optional `gl` package) is not built on this machine');
      // gpu.js lays an array argument into a float texture of at most maxTextureSize² texels
      // (four f32 per texel when it packs them; the bound counts one, so it holds either way).
      let side: number;
      try {
        side = glMaxTextureSize(mode);
      } catch (error) {
        return fail(describe(error), error);
      }
      const bytes = side * side * 4;
      return { mode, adapter: `${mode === 'headlessgl' ? 'headless-gl' : mode === 'webgl2' ? 'WebGL2' : 'WebGL'} (textures up to ${side}²)`, maxBindingBytes: bytes, maxBufferBytes: bytes, webgpu: null };
    }
  }
}

/**
 * In Node, gpu.js finds WebGPU only through `navigator.gpu`. When it is missing, load Dawn
 * from the optional `webgpu` package and add `gpu` to the existing navigator (or create one),
 * together with the WebGPU globals (`GPUBufferUsage`, …) that are not defined yet.
 */
async function installNodeWebGpu(): Promise<void> {
  if (hasNavigatorGpu()) return;
  let loaded: unknown;
  try {
    // Node only (browsers have navigator.gpu): hidden from bundlers, which must not pull Dawn's
    // native binding into a browser build.
    loaded = await import(/* @vite-ignore */ /* webpackIgnore: true */ NODE_WEBGPU_PACKAGE);
  } catch (error) {
    throw new Error(`navigator.gpu is missing and the optional 'webgpu' package could not be loaded: ${describe(error)}`, { cause: error });
  }
  if (!isWebgpuModule(loaded)) throw new Error("the 'webgpu' package does not export create() and globals");
  const mod = loaded;
  for (const [key, value] of Object.entries(mod.globals)) {
    if (!(key in globalThis)) Object.defineProperty(globalThis, key, { value, configurable: true, writable: true });
  }
  if (hasNavigatorGpu()) return; // installed meanwhile by a concurrent start
  const gpu = withAttnkitDeviceNeeds(mod.create([]));
  const existing: unknown = Reflect.get(globalThis, 'navigator');
  if (typeof existing === 'object' && existing !== null) {
    Object.defineProperty(existing, 'gpu', { value: gpu, configurable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  }
}

interface WebgpuModule {
  create(options: string[]): NavigatorGpu;
  readonly globals: object;
}

function isWebgpuModule(value: unknown): value is WebgpuModule {
  return typeof value === 'object' && value !== null && 'create' in value && typeof value.create === 'function' && 'globals' in value && typeof value.globals === 'object';
}

/** Dawn for Node (an optional peer dependency). */
const NODE_WEBGPU_PACKAGE = 'webgpu';

/** WebGPU's `GPU` (navigator.gpu); gpu.js' own `GPU` class shadows the name in this module. */
type NavigatorGpu = globalThis.GPU;

/**
 * gpu.js asks its adapter for a device with default features and limits. attnkit's WGSL
 * attention kernels want subgroups and the adapter's full workgroup memory (48 KiB on an H100
 * against the default 16 KiB), so the Dawn instance installed here hands gpu.js an adapter whose
 * requestDevice adds them when the adapter has them. Kernels check the device and take their
 * plain variants when it does not (a browser's own navigator.gpu is never touched).
 */
function withAttnkitDeviceNeeds(gpu: NavigatorGpu): NavigatorGpu {
  const requestAdapter = async (options?: GPURequestAdapterOptions): Promise<GPUAdapter | null> => {
    const adapter = await gpu.requestAdapter(options);
    if (!adapter) return adapter;
    const requestDevice = (descriptor: GPUDeviceDescriptor = {}): Promise<GPUDevice> => {
      const wanted: GPUFeatureName[] = ['subgroups'];
      const requiredFeatures = [...(descriptor.requiredFeatures ?? []), ...wanted.filter((f) => adapter.features.has(f))];
      const requiredLimits = {
        maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
        maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
        ...descriptor.requiredLimits,
      };
      return adapter.requestDevice({ ...descriptor, requiredFeatures, requiredLimits });
    };
    return new Proxy(adapter, { get: (target, key) => (key === 'requestDevice' ? requestDevice : bound(target, key)) });
  };
  return new Proxy(gpu, { get: (target, key) => (key === 'requestAdapter' ? requestAdapter : bound(target, key)) });
}

/** A property of a native WebGPU object, methods bound to it (Dawn checks `this`). */
function bound(target: object, key: string | symbol): unknown {
  const value: unknown = Reflect.get(target, key, target);
  return typeof value === 'function' ? value.bind(target) : value;
}

function hasNavigatorGpu(): boolean {
  const nav: unknown = Reflect.get(globalThis, 'navigator');
  return typeof nav === 'object' && nav !== null && 'gpu' in nav && nav.gpu !== undefined && nav.gpu !== null;
}

/**
 * gpu.js' shared device (one per process, like a GL context), validated structurally. gpu.js
 * forgets a lost device, so a second acquisition after a loss returns a fresh one.
 */
async function acquireWebGpuContext(): Promise<WebGpuContextLike> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const context: unknown = await acquireGpujsWebGpu();
    if (!isWebGpuContext(context)) throw new Error('gpu.js returned a WebGPU context without an adapter and device');
    if (!context.isLost) return context;
  }
  throw new Error('the WebGPU device was lost again right after it was acquired');
}

function isWebGpuContext(value: unknown): value is WebGpuContextLike {
  return typeof value === 'object' && value !== null && 'device' in value && 'adapter' in value && typeof value.device === 'object' && value.device !== null;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
