import type { Backend } from './backend.js';
import { CpuBackend } from './cpu/backend.js';
import { BackendError } from './errors.js';

/** Names `createBackend` understands. `gpujs-*` run through gpu.js (see `@attnkit/tensor-core/gpu`). */
export type BackendName =
  | 'cpu'
  | 'gpujs-webgpu'
  | 'gpujs-webgl2'
  | 'gpujs-webgl'
  | 'gpujs-headlessgl'
  | 'gpujs-webasm'
  | 'gpujs-cpu';

/** Best first: a real GPU through WebGPU or WebGL, then WebAssembly SIMD, then plain CPU. */
export const BACKEND_PREFERENCE: readonly BackendName[] = [
  'gpujs-webgpu',
  'gpujs-webgl2',
  'gpujs-webgl',
  'gpujs-headlessgl',
  // The CPU backend's WebAssembly SIMD kernels run 30–80× gpu.js' webasm mode (BENCHMARKS.md).
  'cpu',
  'gpujs-webasm',
  'gpujs-cpu',
];

export interface CreateBackendOptions {
  /**
   * Backends to try, in order (default: BACKEND_PREFERENCE). `'gpu'` stands for every
   * gpu.js GPU mode in preference order.
   */
  readonly prefer?: BackendName | 'gpu' | readonly (BackendName | 'gpu')[];
}

export interface BackendSelection {
  readonly backend: Backend;
  /** The backends tried before the chosen one, with the reason each was passed over. */
  readonly passedOver: readonly { readonly name: BackendName; readonly reason: string }[];
}

const GPU_MODES: readonly BackendName[] = ['gpujs-webgpu', 'gpujs-webgl2', 'gpujs-webgl', 'gpujs-headlessgl'];

/** Creates the first backend of the preference list that works on this machine. */
export async function createBackend(options: CreateBackendOptions = {}): Promise<BackendSelection> {
  const prefer = options.prefer;
  const requested: readonly (BackendName | 'gpu')[] = prefer === undefined ? BACKEND_PREFERENCE : typeof prefer === 'string' ? [prefer] : prefer;
  const order: BackendName[] = [];
  for (const name of requested) {
    for (const n of name === 'gpu' ? GPU_MODES : [name]) if (!order.includes(n)) order.push(n);
  }
  const passedOver: { name: BackendName; reason: string }[] = [];
  for (const name of order) {
    try {
      return { backend: await instantiate(name), passedOver };
    } catch (error) {
      passedOver.push({ name, reason: error instanceof Error ? error.message : String(error) });
    }
  }
  throw new BackendError({
    fn: 'createBackend',
    expected: `one of ${order.join(', ')} to work`,
    got: passedOver.map((p) => `${p.name}: ${p.reason}`).join('; ') || 'an empty preference list',
  });
}

async function instantiate(name: BackendName): Promise<Backend> {
  if (name === 'cpu') return new CpuBackend();
  const { createGpujsBackend } = await import('./gpujs/index.js');
  return createGpujsBackend(name);
}
