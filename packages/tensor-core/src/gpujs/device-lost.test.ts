// A lost WebGPU device (simulated with GPUDevice.destroy(), as a driver reset or a browser
// reclaiming the GPU would) ends its backend cleanly: the next operation throws a BackendError
// that names the loss — never a hang, never stale values — disposing still works, and a new
// backend created afterwards runs on a fresh device. Needs gpujs-webgpu (lavapipe in CI).
import { describe, expect, it } from 'vitest';
import { createBackend } from '../create-backend.js';
import { BackendError } from '../errors.js';
import * as op from '../ops/index.js';
import { availableBackends } from '../testing/index.js';
import { isGpujsBackend } from './backend.js';

const { available } = await availableBackends();
const webgpu = available.find((b) => b.name === 'gpujs-webgpu');

/** Rejects instead of hanging: a lost device must answer within a few seconds. */
function within<T>(promise: Promise<T>, ms = 10_000): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms (a hang)`)), ms))]);
}

describe.runIf(webgpu)('a lost WebGPU device', () => {
  it('surfaces as a BackendError on the next operation, and a new backend works afterwards', async () => {
    const { backend } = await createBackend({ prefer: 'gpujs-webgpu' });
    if (!isGpujsBackend(backend) || !backend.webgpu) throw new Error('expected the gpujs-webgpu backend');
    const x = op.tensor(backend, [1, -2, 3, -4], [2, 2]);
    using y = await op.relu(x);
    expect(Array.from(await y.data())).toEqual([1, 0, 3, 0]);

    // An operation issued in the same tick as the loss: its readback reports it.
    backend.webgpu.device.destroy();
    const early = await within(
      op.relu(x).then(
        async (t) => {
          try {
            return await t.data();
          } finally {
            t.dispose();
          }
        },
        (error: unknown) => Promise.reject(error instanceof Error ? error : new Error(String(error))),
      ),
    ).catch((error: unknown) => error);
    expect(early).toBeInstanceOf(BackendError);

    // Once the loss is known, every operation says so before it runs.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(backend.isDeviceLost).toBe(true);
    await expect(within(op.matmul(x, x))).rejects.toThrow(/\[matmul\] expected a live GPU device, got gpujs-webgpu's device destroyed.*\(create a new backend\)/);
    await expect(within(x.data())).rejects.toBeInstanceOf(BackendError);
    expect(() => op.tensor(backend, [1], [1])).toThrow(BackendError);

    // Disposing the dead backend (and its tensors) is still clean.
    x.dispose();
    await backend.dispose();
    expect(backend.memory()).toEqual({ bytesAllocated: 0, liveBuffers: 0, liveTensors: 0 });

    // A new backend gets a fresh device.
    const { backend: fresh } = await createBackend({ prefer: 'gpujs-webgpu' });
    try {
      if (!isGpujsBackend(fresh)) throw new Error('expected the gpujs-webgpu backend');
      expect(fresh.isDeviceLost).toBe(false);
      using a = op.tensor(fresh, [1, 2, 3, 4], [2, 2]);
      using b = await op.matmul(a, a);
      expect(Array.from(await b.data())).toEqual([7, 10, 15, 22]);
    } finally {
      await fresh.dispose();
    }
  });
});
