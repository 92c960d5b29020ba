// The soak test: 10 000 decode steps round-robin over MHA, GQA (paged int8), MQA (sliding window,
// f16), MLA (bf16 latent), NSA and DSA, each cache growing to 40 tokens and truncated back by
// 1–20, on cpu and gpujs-cpu (and 1 000 steps on gpujs-webgpu, where a step costs ~25 ms on
// lavapipe). Checkpoints every 500 steps after a warm-up in which every cache reached its
// high-water mark: live tensors and buffers must not change at all, allocated bytes and the heap
// (after a full GC: this project runs with --expose-gc) must not grow beyond what the caches' own
// nbytes grew. ATTNKIT_SOAK_STEPS overrides the step count.
import { availableBackends } from '@attnkit/tensor-core/testing';
import { describe, expect, it } from 'vitest';
import { type SoakCheckpoint, runSoak } from './soak.js';

const { available } = await availableBackends();
const STEPS: Readonly<Record<string, number>> = { cpu: 10_000, 'gpujs-cpu': 10_000, 'gpujs-webgpu': 1_000 };
/** Heap noise allowed after a full GC (V8 keeps some code and feedback around), or without one. */
const HEAP_NOISE_GC = 2 * 2 ** 20;
const HEAP_NOISE_NO_GC = 16 * 2 ** 20;

const grownBeyondCaches = (first: SoakCheckpoint, c: SoakCheckpoint, bytes: (c: SoakCheckpoint) => number): number => bytes(c) - bytes(first) - Math.max(0, c.cacheBytes - first.cacheBytes);

describe('soak: decode steps across the variants, caches growing and truncating', () => {
  for (const testBackend of available.filter((b) => b.name in STEPS)) {
    const steps = Number(process.env.ATTNKIT_SOAK_STEPS ?? STEPS[testBackend.name]);
    it(`${steps} steps on ${testBackend.name}: no growth of live tensors, buffers or heap beyond the caches' nbytes`, { timeout: 900_000 }, async () => {
      const backend = await testBackend.create();
      try {
        const report = await runSoak(backend, { steps, warmup: Math.min(1500, steps / 2), checkEvery: Math.max(50, Math.floor(steps / 20)), highWater: 40, maxDrop: 20, seed: 14 });
        const [first, ...rest] = report.checkpoints;
        if (!first) throw new Error('no checkpoint');
        expect(rest.length, 'checkpoints after the first').toBeGreaterThanOrEqual(5);
        expect(report.truncations, 'the caches were truncated again and again').toBeGreaterThan(steps / 40);
        const noise = report.gcExposed ? HEAP_NOISE_GC : HEAP_NOISE_NO_GC;
        for (const c of rest) {
          expect({ step: c.step, liveTensors: c.liveTensors, liveBuffers: c.liveBuffers }, 'live tensors and buffers').toEqual({ step: c.step, liveTensors: first.liveTensors, liveBuffers: first.liveBuffers });
          expect(grownBeyondCaches(first, c, (x) => x.bytesAllocated), `device bytes at step ${c.step} beyond the caches' growth`).toBeLessThanOrEqual(0);
          expect(grownBeyondCaches(first, c, (x) => x.heapBytes), `heap bytes at step ${c.step} beyond the caches' growth`).toBeLessThanOrEqual(noise);
        }
        const last = rest[rest.length - 1] ?? first;
        console.log(
          `soak ${report.backend}: ${report.steps} steps, ${report.truncations} truncations in ${report.seconds.toFixed(1)} s; ` +
            `live ${first.liveTensors} tensors / ${first.liveBuffers} buffers throughout; heap ${(first.heapBytes / 2 ** 20).toFixed(2)} → ${(last.heapBytes / 2 ** 20).toFixed(2)} MiB (gc ${report.gcExposed ? 'exposed' : 'not exposed'})`,
        );
      } finally {
        await backend.dispose();
      }
      expect(backend.memory(), 'a disposed backend holds nothing').toEqual({ bytesAllocated: 0, liveBuffers: 0, liveTensors: 0 });
    });
  }
});
