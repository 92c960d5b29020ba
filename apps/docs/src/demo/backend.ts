// The backend a demo runs on: the best one this browser offers, in the order the issue asks for
// (WebGPU, else WebGL2, else WebAssembly), the CPU backend last. `createBackend` tries them in
// turn and reports why each was passed over, so the page can say what it runs on and why.
//
// Until the gpu.js backends land on main (branch `gpujs`), `createBackend` passes over every
// `gpujs-*` name with "a build without gpu.js backends yet" and the demos run on `cpu`. Nothing
// here changes when they land: the same call then returns the first gpu.js backend that starts.

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

/** A backend a demo leaves out of its default order, and why (shown with the others passed over). */
export interface Exclusion {
  readonly name: BackendName;
  readonly reason: string;
}

/**
 * The reference model's demo skips gpu.js' WebAssembly mode unless asked for by name: gpu.js
 * assembles one WebAssembly module, with its own WebAssembly.Memory, per kernel and size
 * signature, and a decode loop's growing cache makes new signatures at every step; Chromium
 * refuses further memories ("WebAssembly.Memory(): could not allocate memory") after about 80
 * decode steps of the small model. Measured in the e2e setup (headless Chromium, gpu.js 2.24.1).
 */
export const WEBASM_DECODE_EXCLUSION: Exclusion = {
  name: 'gpujs-webasm',
  reason:
    "skipped for long decode loops: gpu.js' WebAssembly mode keeps a WebAssembly.Memory per kernel size signature, and the browser refuses new ones after about 80 generated tokens (add ?backend=gpujs-webasm to try it)",
};

/**
 * Creates the demo's backend; `prefer` narrows the list (a `?backend=` query parameter, for
 * tests). `exclude` leaves backends out of the default order, reported with the others passed
 * over; a backend named in `prefer` is never excluded.
 */
export async function createDemoBackend(prefer?: readonly BackendName[], exclude: readonly Exclusion[] = []): Promise<DemoBackend> {
  const skipped = prefer ? [] : exclude;
  const order = (prefer ?? BROWSER_PREFERENCE).filter((n) => !skipped.some((e) => e.name === n));
  const { backend, passedOver } = await createBackend({ prefer: order });
  const { name, adapter } = backend.info;
  // the excluded backends the order would have tried before the one it got, among those passed over
  const rank = (n: string): number => BROWSER_PREFERENCE.findIndex((b) => b === n);
  const tried = [...passedOver, ...skipped.filter((e) => rank(e.name) < rank(name))].sort((a, b) => rank(a.name) - rank(b.name));
  return {
    backend,
    label: adapter && adapter !== name ? `${name} (${adapter})` : name,
    passedOver: tried,
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
