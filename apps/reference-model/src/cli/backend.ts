// `--backend`: which tensor-core backend runs the model.

import { type Backend, type BackendName, ConfigError, createBackend } from '@attnkit/tensor-core';

export const BACKEND_CHOICES = ['cpu', 'gpujs-cpu', 'gpujs-webasm', 'gpujs-webgpu', 'auto'] as const;
export type BackendChoice = (typeof BACKEND_CHOICES)[number];

export const BACKEND_HELP = `--backend NAME   tensor-core backend: cpu (default: the fastest for these small models on a
                   CPU-only machine), gpujs-cpu, gpujs-webasm (WebAssembly SIMD), gpujs-webgpu
                   (WebGPU through Dawn), or auto (the first that starts of WebGPU, WebGL, CPU, gpu.js WebAssembly)`;

function isChoice(name: string): name is BackendChoice {
  return BACKEND_CHOICES.some((c) => c === name);
}

export async function openBackend(name: string): Promise<{ backend: Backend; note: string }> {
  if (!isChoice(name)) throw new ConfigError({ fn: '--backend', expected: BACKEND_CHOICES.join(', '), got: name });
  const prefer: BackendName | undefined = name === 'auto' ? undefined : name;
  const { backend, passedOver } = await createBackend(prefer === undefined ? {} : { prefer });
  const skipped = passedOver.map((p) => `${p.name} unavailable`).join('; ');
  return { backend, note: `${backend.info.name}${skipped ? ` (${skipped})` : ''}` };
}
