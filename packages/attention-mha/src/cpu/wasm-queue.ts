// The JavaScript side of the tile module's work queues (`flashQueue`, `sweepQueue`: wasm-rows.ts):
// a table of jobs, each a list of calls, in phases (the table's order), a job waiting for the
// jobs it depends on by a counter they signal (prefill: a kv head's tiles wait for its staging
// and K/V packing, its finish for its tiles — not for every other head's), handed to every
// thread at once. The calling thread takes its share round by round, with an abort checkpoint
// between rounds; the workers go from round to round without a hand-off.

import { type AbortCheckpoint, wasm } from '@attnkit/tensor-core';
import { CALL_BYTES, type CallKind, JOB_BYTES, KIND_ARG } from './wasm-rows.js';

type Pool = wasm.WasmThreadPool | null;

/**
 * Work per round between two of the calling thread's abort checkpoints, in multiply-adds:
 * ~10–25 ms on two threads (the workers go on from round to round without waiting for them).
 */
const ROUND_MADDS = 2 ** 28;

/** One job: calls run in order on one thread (16 slots each, the kind in slot KIND_ARG), its work and the kv head it reads. */
export interface QueueJob {
  readonly calls: readonly (readonly number[])[];
  /** Multiply-adds (tiles) or an estimate of the same order (plumbing): the queue's order and rounds. */
  readonly madds: number;
  /** The kv head whose K/V the calls read. */
  readonly head: number;
  /** Start only once dependency counter `counter` (0, 1, …) reaches `count`: jobs of earlier phases signal it. */
  readonly wait?: { readonly counter: number; readonly count: number };
  /** The dependency counter this job adds one to when done. */
  readonly signal?: number;
}

/** A call entry of kind `kind` with `args` in its first slots (an f32 argument as its bits: f32Bits). */
export function plumbingCall(kind: (typeof CallKind)[Exclude<keyof typeof CallKind, 'span'>], ...args: readonly number[]): number[] {
  const entry = new Array<number>(CALL_BYTES / 4).fill(0);
  args.forEach((a, i) => (entry[i] = a));
  entry[KIND_ARG] = kind;
  return entry;
}

const bits = new DataView(new ArrayBuffer(4));
/** The i32 whose bits are the f32 `x` (a call slot the queue reads as f32). */
export function f32Bits(x: number): number {
  bits.setFloat32(0, x, true);
  return bits.getInt32(0, true);
}

/**
 * Runs `phases` of jobs on every thread through the shared queue named `queueName` (flashSpan's
 * calls, or with 'sweepQueue' decodeSweep's as the span kind). A job may wait only for jobs of
 * the phases before its own (which come first in the table). Within a phase: kv head by kv head
 * (consecutive jobs read the same K/V, which stays in L2/L3 while both threads stream it: a span
 * over K/V that has gone cold costs 12–16% more), each round's jobs longest first (the last jobs
 * taken are the shortest, so the threads finish together). Thread t scores into
 * `scores + t · scoreBytes`.
 */
export async function runQueue(
  heap: wasm.WasmHeap,
  kernel: wasm.WasmKernelModule,
  pool: Pool,
  phases: readonly (readonly QueueJob[])[],
  scores: number,
  scoreBytes: number,
  checkpoint: AbortCheckpoint,
  fn: string,
  queueName: 'flashQueue' | 'sweepQueue' = 'flashQueue',
): Promise<void> {
  const sorted: QueueJob[] = [];
  const rounds: [number, number][] = [];
  for (const phase of phases) {
    const byHead = [...phase].sort((a, b) => a.head - b.head || b.madds - a.madds);
    for (let start = 0, sum = 0, i = 0; i < byHead.length; i++) {
      sum += (byHead[i] as QueueJob).madds;
      if (sum >= ROUND_MADDS || i === byHead.length - 1) {
        rounds.push([sorted.length, sorted.length + i + 1 - start]);
        sorted.push(...byHead.slice(start, i + 1).sort((a, b) => b.madds - a.madds));
        start = i + 1;
        sum = 0;
      }
    }
  }
  if (sorted.length === 0) return;
  const callCount = sorted.reduce((s, j) => s + j.calls.length, 0);
  // dependency counters, and one more that jobs without a signal add to
  const dependencies = 1 + sorted.reduce((n, j) => Math.max(n, (j.signal ?? -1) + 1, j.wait ? j.wait.counter + 1 : 0), 0);
  const table = heap.alloc(CALL_BYTES * callCount + JOB_BYTES * sorted.length + 4 * rounds.length + 4 * dependencies, fn);
  try {
    const i32 = heap.i32;
    const callsAt = table.byteOffset;
    const jobsAt = callsAt + CALL_BYTES * callCount;
    const countersAt = jobsAt + JOB_BYTES * sorted.length;
    const dependsAt = countersAt + 4 * rounds.length;
    const spare = dependencies - 1;
    let c = 0;
    sorted.forEach((job, j) => {
      const at = (jobsAt + JOB_BYTES * j) / 4;
      i32[at] = c;
      for (const args of job.calls) i32.set(args, (callsAt + CALL_BYTES * c++) / 4);
      i32[at + 1] = c;
      i32[at + 2] = dependsAt + 4 * (job.wait?.counter ?? spare);
      i32[at + 3] = job.wait?.count ?? 0;
      i32[at + 4] = dependsAt + 4 * (job.signal ?? spare);
    });
    const threads = pool?.size ?? 1;
    const roundArgs = (r: number, t: number): number[] => {
      const [from, to] = rounds[r] as [number, number];
      return [callsAt, jobsAt + JOB_BYTES * from, to - from, countersAt + 4 * r, scores + t * scoreBytes];
    };
    i32.fill(0, countersAt / 4, dependsAt / 4 + dependencies);
    const queue = wasm.exported<(...args: number[]) => void>(kernel.instance, queueName);
    if (!pool || threads < 2) {
      for (let r = 0; r < rounds.length; r++) {
        queue(...roundArgs(r, 0));
        await checkpoint.check();
      }
      return;
    }
    // The workers get every round at once and go from one round's queue to the next without a
    // hand-off (one per round measured ~10% of a worker's time idle at N = 2048, d = 128); the
    // calling thread takes its share round by round, with the abort checkpoint between. On abort
    // it empties the queues that are left (each counter past its count), so the workers stop
    // after their current job (a job waiting for others waits only for jobs already taken, which
    // finish), and waits for them before the table goes.
    // (a worker's failure is held until the calling thread's rounds are done: not unhandled meanwhile)
    const workers = pool.run(kernel, queueName, [[], ...Array.from({ length: threads - 1 }, (_, w) => rounds.map((_, r) => roundArgs(r, w + 1)))]).then(
      () => null,
      (e: unknown) => ({ error: e }),
    );
    try {
      for (let r = 0; r < rounds.length; r++) {
        queue(...roundArgs(r, 0));
        await checkpoint.check();
      }
    } catch (e) {
      rounds.forEach(([from, to], r) => Atomics.store(i32, countersAt / 4 + r, to - from));
      await workers;
      throw e;
    }
    const failed = await workers;
    if (failed) throw failed.error;
  } finally {
    table.release();
  }
}
