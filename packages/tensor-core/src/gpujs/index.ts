// @attnkit/tensor-core/gpu: the gpu.js backend family (WebGPU, WebGL2/WebGL, headless-gl,
// WebAssembly, JavaScript) and the extension API for fused kernels of other packages.
import { type GpujsBackendOptions, GpujsBackend } from './backend.js';
import { type GpujsBackendName, startMode } from './modes.js';

export { GpujsBackend, isGpujsBackend, type GpujsBackendOptions } from './backend.js';
export type {
  GpujsKernel,
  GpujsKernelArgs,
  GpujsKernelSpec,
  GpujsParamKind,
  GpujsRunOptions,
  WebGpuAccess,
} from './extension.js';
export { MODE_OF_BACKEND, type GpujsBackendName, type GpujsMode } from './modes.js';
export type { OutputGrid, WasmModuleReport } from './runtime.js';
export type { Arr as GpujsArray, Gpu as GpujsThis } from './kernels/common.js';

/**
 * Starts the gpu.js backend `name` (`gpujs-webgpu`, `gpujs-webasm`, `gpujs-cpu`, …). Throws a
 * BackendError whose message says why when the mode cannot run here (no adapter, no WebGL, …);
 * `createBackend` collects these reasons in `passedOver`.
 */
export async function createGpujsBackend(name: GpujsBackendName, options: GpujsBackendOptions = {}): Promise<GpujsBackend> {
  const runtime = await startMode(name);
  return new GpujsBackend(name, runtime, options);
}
