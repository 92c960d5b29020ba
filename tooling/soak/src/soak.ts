// The soak loop: decode steps round-robin across the variants, each cache growing to a high-water
// mark and then truncated back by a random number of tokens, with checkpoints that record the
// backend's live tensors, buffers and bytes and the process heap (after a full GC when node runs
// with --expose-gc). Nothing here asserts: soak.test.ts judges the checkpoints.

import type { Backend } from '@attnkit/tensor-core';
import { SeededRandom } from '@attnkit/testkit';
import { type SoakVariant, dsaVariant, gqaVariant, mhaVariant, mlaVariant, mqaVariant, nsaVariant } from './variants.js';

export interface SoakOptions {
  /** Decode steps in all (spread round-robin over the variants). */
  readonly steps: number;
  /** Steps before the first checkpoint: every cache reaches its high-water mark at least once. */
  readonly warmup: number;
  /** Steps between checkpoints. */
  readonly checkEvery: number;
  /** A cache is truncated when it reaches this many tokens… */
  readonly highWater: number;
  /** …back by 1 to this many tokens. */
  readonly maxDrop: number;
  readonly seed: number;
}

export interface SoakCheckpoint {
  readonly step: number;
  readonly liveTensors: number;
  readonly liveBuffers: number;
  readonly bytesAllocated: number;
  /** Σ nbytes of the caches. */
  readonly cacheBytes: number;
  /** process.memoryUsage(): heapUsed + arrayBuffers (typed arrays live outside the V8 heap). */
  readonly heapBytes: number;
  readonly lengths: readonly number[];
}

export interface SoakReport {
  readonly backend: string;
  readonly variants: readonly string[];
  readonly steps: number;
  readonly truncations: number;
  readonly gcExposed: boolean;
  readonly checkpoints: readonly SoakCheckpoint[];
  readonly seconds: number;
}

/** A full collection when node exposes it (twice: weak references and finalizers settle). */
function collect(): boolean {
  const gc: unknown = Reflect.get(globalThis, 'gc');
  if (typeof gc !== 'function') return false;
  Reflect.apply(gc, undefined, []);
  Reflect.apply(gc, undefined, []);
  return true;
}

export async function runSoak(backend: Backend, options: SoakOptions): Promise<SoakReport> {
  const rng = new SeededRandom(options.seed);
  const capacity = options.highWater + 8;
  const variants: SoakVariant[] = [
    mhaVariant(backend, rng, capacity),
    gqaVariant(backend, rng, capacity),
    mqaVariant(backend, rng),
    await mlaVariant(backend, rng, capacity),
    nsaVariant(backend, rng, capacity),
    await dsaVariant(backend, rng, capacity),
  ];
  const checkpoints: SoakCheckpoint[] = [];
  let truncations = 0;
  let gcExposed = false;
  const started = performance.now();
  try {
    for (let step = 1; step <= options.steps; step++) {
      const variant = variants[step % variants.length];
      if (!variant) throw new Error('unreachable: no variant');
      await variant.step();
      if (variant.length >= options.highWater) {
        variant.truncate(variant.length - rng.int(1, options.maxDrop));
        truncations++;
      }
      if (step >= options.warmup && (step - options.warmup) % options.checkEvery === 0) {
        // Let pending microtasks and timers (gpu.js worker replies) settle before measuring.
        await new Promise((resolve) => setTimeout(resolve, 0));
        gcExposed = collect();
        const m = backend.memory();
        const usage = process.memoryUsage();
        checkpoints.push({
          step,
          liveTensors: m.liveTensors,
          liveBuffers: m.liveBuffers,
          bytesAllocated: m.bytesAllocated,
          cacheBytes: variants.reduce((sum, v) => sum + v.nbytes, 0),
          heapBytes: usage.heapUsed + usage.arrayBuffers,
          lengths: variants.map((v) => v.length),
        });
      }
    }
  } finally {
    for (const v of variants) v[Symbol.dispose]();
  }
  return {
    backend: backend.info.name,
    variants: variants.map((v) => v.name),
    steps: options.steps,
    truncations,
    gcExposed,
    checkpoints,
    seconds: (performance.now() - started) / 1000,
  };
}
