// createBackend picks the first backend of the preference list that starts here and reports
// why it passed over the ones before it.
import { describe, expect, it } from 'vitest';
import { BACKEND_PREFERENCE, createBackend } from './create-backend.js';
import { BackendError } from './errors.js';
import { isCpuBackend } from './cpu/backend.js';
import { availableBackends } from './testing/index.js';

const { available } = await availableBackends();
const names = new Set(available.map((b) => b.name));

describe('createBackend', () => {
  it('prefers a GPU, then WebAssembly, then the CPU, and says why it passed each over', async () => {
    const { backend, passedOver } = await createBackend();
    try {
      const chosen = BACKEND_PREFERENCE.findIndex((n) => n === backend.info.name);
      expect(chosen).toBeGreaterThanOrEqual(0);
      // everything before the chosen backend was tried and refused, with a reason
      expect(passedOver.map((p) => p.name)).toEqual(BACKEND_PREFERENCE.slice(0, chosen));
      for (const p of passedOver) expect(p.reason).toMatch(/^\[createGpujsBackend\] expected gpu\.js mode '\w+' to start, got .+/);
      if (names.has('gpujs-webgpu')) expect(backend.info.name).toBe('gpujs-webgpu');
    } finally {
      await backend.dispose();
    }
  });

  it('honours an explicit preference and reports the browser-only modes as unavailable', async () => {
    const { backend, passedOver } = await createBackend({ prefer: ['gpujs-webgl2', 'gpujs-headlessgl', 'cpu'] });
    try {
      expect(isCpuBackend(backend)).toBe(true);
      expect(passedOver.map((p) => p.name)).toEqual(['gpujs-webgl2', 'gpujs-headlessgl']);
      // Node has no WebGL, and headless-gl (the optional `gl` package) is not built here.
      expect(passedOver[0]?.reason).toContain('WebGL2 is not available');
      expect(passedOver[1]?.reason).toContain('headless-gl');
    } finally {
      await backend.dispose();
    }
  });

  it("expands 'gpu' to the GPU modes and throws a BackendError listing every reason when none starts", async () => {
    let caught: unknown = null;
    try {
      await createBackend({ prefer: ['gpujs-webgl', 'gpujs-headlessgl'] });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(BackendError);
    expect(String(caught)).toMatch(/gpujs-webgl: .+; gpujs-headlessgl: .+/);
    if (names.has('gpujs-webgpu')) {
      const { backend } = await createBackend({ prefer: 'gpu' });
      expect(backend.info.name).toBe('gpujs-webgpu');
      expect(backend.info.deviceKind).toBe('gpu');
      await backend.dispose();
    }
  });

  it('starts each available backend by name', async () => {
    for (const name of names) {
      const { backend, passedOver } = await createBackend({ prefer: name });
      expect(backend.info.name).toBe(name);
      expect(passedOver).toEqual([]);
      expect(backend.info.maxBindingBytes).toBeGreaterThan(0);
      await backend.dispose();
      expect(backend.isDisposed).toBe(true);
    }
  });
});
