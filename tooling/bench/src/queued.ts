// GPU timing the way a decode loop uses a GPU when it does not read every step back: `steps`
// calls queued back to back, ended by one `onSubmittedWorkDone()`. Per step it reports the time
// until the last call returned (host: validation, encoding, submission) and until the GPU had
// finished them all (done), each the median of `trials` trials after a warm-up trial. GPU
// timestamp queries are no use here: through Dawn on the H100 they are quantised to 65.5 µs.
import { performance } from 'node:perf_hooks';

/** The part of a GPUQueue this needs (so the harness does not depend on WebGPU's types). */
export interface SubmittedWorkQueue {
  onSubmittedWorkDone(): Promise<unknown>;
}

export interface QueuedTiming {
  /** ms per step until the calls returned. */
  readonly host: number;
  /** ms per step until the GPU finished. */
  readonly done: number;
}

export interface QueuedOptions {
  /** Calls queued per trial. Default 100. */
  readonly steps?: number;
  /** Timed trials after the warm-up one. Default 5. */
  readonly trials?: number;
}

/** Times `step` (which must dispose what it returns) queued back to back; see the file comment. */
export async function queuedSteps(queue: SubmittedWorkQueue, step: () => Promise<void>, options: QueuedOptions = {}): Promise<QueuedTiming> {
  const steps = options.steps ?? 100;
  const trials = options.trials ?? 5;
  const host: number[] = [];
  const done: number[] = [];
  for (let trial = 0; trial <= trials; trial++) {
    // large upload arrays are garbage by now: collect them outside the timed window when the
    // runtime allows it (node --expose-gc)
    (globalThis as { gc?: () => void }).gc?.();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await step();
    const t1 = performance.now();
    await queue.onSubmittedWorkDone();
    if (trial === 0) continue;
    host.push((t1 - t0) / steps);
    done.push((performance.now() - t0) / steps);
  }
  return { host: median(host), done: median(done) };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}
