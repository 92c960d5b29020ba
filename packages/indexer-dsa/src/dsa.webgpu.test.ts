// A DSA decode step on gpujs-webgpu stays on the device: the indexer's fused WebGPU kernel picks
// the keys and MLA's list decode reads them where they lie. Counted here by wrapping the
// device's queue: no buffer is mapped for reading during the step, and the number of
// submissions (gpu.js launches and the two WGSL submissions) is pinned so a regression that
// adds launches shows.
/// <reference types="@webgpu/types" />
import { isWebGpuHost } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { describeOnBackend } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { SMALL, randomInput, randomLayer } from './testing/fixtures/layers.js';

const { available } = await availableBackends();

describeOnBackend(available, 'gpujs-webgpu', 'a DSA decode step on gpujs-webgpu', (getBackend) => {
  it('reads nothing back: the picks go from the indexer to MLA on the device', async () => {
    const backend = getBackend();
    if (!isWebGpuHost(backend)) throw new Error('gpujs-webgpu exposes its device');
    const device = backend.webgpu.device;
    const { layer, config } = await randomLayer(backend, { ...SMALL, indexTopk: 6 }, 3);
    using _layer = layer;
    using cache = layer.createCache({ batchSize: 2, initialCapacity: 32, maxCapacity: 32 });
    {
      const { x } = randomInput(backend, 2, 20, config.dim, 4);
      using _x = x;
      (await layer.forward(x, { cache })).dispose(); // prefill: 20 tokens, more than top-6
    }
    const { x } = randomInput(backend, 2, 1, config.dim, 5);
    using _x = x;
    (await layer.forward(x, { cache })).dispose(); // warm: pipelines built
    cache.truncate([20, 20]);

    const counts = { submits: 0, reads: 0 };
    const queue = device.queue;
    const submit = queue.submit.bind(queue);
    const mapAsync = Object.getOwnPropertyDescriptor(GPUBuffer.prototype, 'mapAsync');
    queue.submit = (buffers: Iterable<GPUCommandBuffer>): undefined => {
      counts.submits++;
      return submit(buffers);
    };
    Object.defineProperty(GPUBuffer.prototype, 'mapAsync', {
      configurable: true,
      value(this: GPUBuffer, mode: number, offset?: number, size?: number): Promise<undefined> {
        if (mode & GPUMapMode.READ) counts.reads++;
        return Reflect.apply(mapAsync?.value as (...a: unknown[]) => Promise<undefined>, this, [mode, offset, size]);
      },
    });
    try {
      using r = await layer.forwardWithIndex(x, { cache, keepScores: false });
      expect(r.sparse).toBe(true);
      expect(r.index.dispatch.implementation).toBe('fused:webgpu-indexer');
      expect(r.dispatch.implementation).toBe('fused:webgpu-list-decode');
      expect(counts.reads, 'buffers mapped for reading during the step').toBe(0);
      expect(counts.submits).toBe(STEP_SUBMISSIONS);
    } finally {
      queue.submit = submit;
      if (mapAsync) Object.defineProperty(GPUBuffer.prototype, 'mapAsync', mapAsync);
    }
    // The same step with the composed indexer (its top-k through tensor-core) gives the same y.
    cache.truncate([20, 20]);
    using fused = await layer.forward(x, { cache });
    cache.truncate([20, 20]);
    using composed = await layer.forward(x, { cache, indexerImplementation: 'composed' });
    expect(Array.from(await fused.data())).toEqual(Array.from(await composed.data()));
  });
}, { checkLeaks: true });

/**
 * Queue submissions of one DSA decode step (small config, B = 2), each gpu.js kernel one:
 * MLA's projections, norms and RoPE 12, the indexer's key projection 4 and query projection 4,
 * the two cache appends 2, the fused indexer 1 (it was a score kernel plus tensor-core's topK),
 * MLA's attention 7 (query absorption, the list decode, the value up-projection, the output
 * projection). The attention itself is 2 of 30: the rest is the layer's projections.
 */
const STEP_SUBMISSIONS = 30;
