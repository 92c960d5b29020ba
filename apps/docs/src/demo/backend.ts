// The backend a demo runs on: the best one this browser offers, in the order the issue asks for
// (WebGPU, else WebGL2, else WebAssembly), the CPU backend last. `createBackend` tries them in
// turn and reports why each was passed over, so the page can say what it runs on and why.
// Every demo, the model's decode loop included, runs on any of them: gpu.js' WebAssembly mode
// keeps a bounded number of modules (tensor-core's runtime), so long generations do not exhaust
// the browser's WebAssembly memories.

import { type Backend, type BackendName, type BackendSelection, createBackend } from '@attnkit/tensor-core';

/** Browser preference order (headless-gl is Node-only, so it is not asked for). */
export const BROWSER_PREFERENCE: readonly BackendName[] = ['gpujs-webgpu', 'gpujs-webgl2', 'gpujs-webgl', 'gpujs-webasm', 'cpu'];

export interface DemoBackend {
  readonly backend: Backend;
  /** What the page shows: the backend's name and, for a GPU, its adapter. */
  readonly label: string;
  /** Backends tried first, each with the reason it was passed over. */
  readonly passedOver: BackendSelection['passedOver'];
  /** True when no gpu.js backend started (the demo is running on the plain CPU backend). */
  readonly cpuFallback: boolean;
}

/**
 * Creates the demo's backend: the first of BROWSER_PREFERENCE that starts, or of `prefer` (a
 * `?backend=` query parameter, for tests), with the reasons the ones before it were passed over.
 */
export async function createDemoBackend(prefer?: readonly BackendName[]): Promise<DemoBackend> {
  const { backend, passedOver } = await createBackend({ prefer: prefer ?? BROWSER_PREFERENCE });
  const { name, adapter } = backend.info;
  return {
    backend,
    label: adapter && adapter !== name ? `${name} (${adapter})` : name,
    passedOver,
    cpuFallback: backend.info.family === 'cpu',
  };
}

/** Reads `?backend=a,b` from a page URL into a preference list (unknown names are dropped). */
export function preferenceFromQuery(search: string): BackendName[] | undefined {
  const value = new URLSearchParams(search).get('backend');
  if (!value) return undefined;
  const names = value.split(',').map((s) => s.trim());
  const known = names.filter((n): n is BackendName => BROWSER_PREFERENCE.some((b) => b === n) || n === 'gpujs-cpu');
  return known.length > 0 ? known : undefined;
}
