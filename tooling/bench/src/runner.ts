// The benchmark runner: warm-up calls, then timed calls until both a minimum count and a
// minimum time are reached; the median is the figure (robust to a stray GC pause).
import { performance } from 'node:perf_hooks';

export interface MeasureOptions {
  /** Untimed calls first (compilation, caches, JIT). Default 2. */
  readonly warmup?: number;
  /** At least this many timed calls. Default 5. */
  readonly iterations?: number;
  /** And keep timing until this much time has passed. Default 1000 ms. */
  readonly minTimeMs?: number;
  /** Stop after this many timed calls whatever the time. Default 50. */
  readonly maxIterations?: number;
}

export interface Measurement {
  readonly medianMs: number;
  readonly minMs: number;
  readonly samplesMs: readonly number[];
  /**
   * Median CPU time of this process per call (user + system, all its threads: workers, the
   * WebGPU driver's, ONNX Runtime's). On a machine other jobs share, wall time measures the
   * contention too; CPU time measures the work.
   */
  readonly medianCpuMs: number;
}

/** Times `run` (awaited: it must return only when its result is on the host). */
export async function measure(run: () => unknown, options: MeasureOptions = {}): Promise<Measurement> {
  const warmup = options.warmup ?? 2;
  const iterations = options.iterations ?? 5;
  const minTimeMs = options.minTimeMs ?? 1000;
  const maxIterations = options.maxIterations ?? 50;
  for (let i = 0; i < warmup; i++) await run();
  const samples: number[] = [];
  const cpuSamples: number[] = [];
  const start = performance.now();
  while (samples.length < maxIterations && (samples.length < iterations || performance.now() - start < minTimeMs)) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await run();
    samples.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuSamples.push((c.user + c.system) / 1000);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return { medianMs: median(samples), minMs: sorted[0] ?? NaN, samplesMs: samples, medianCpuMs: median(cpuSamples) };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

/** Floating-point operations per second, in GFLOP/s, of `flops` done in `ms`. */
export function gflops(flops: number, ms: number): number {
  return flops / (ms * 1e6);
}
