// Deterministic aborts for tests: a real AbortSignal that fires on the n-th time code reads its
// `aborted` flag, so an operation can be stopped at each of its checkpoints in turn, whatever
// the machine's speed (a timer would land somewhere different on every run).

export interface CountingAbort {
  readonly signal: AbortSignal;
  /** How many times `aborted` was read so far. */
  reads(): number;
}

/** A signal that aborts (with `reason`) when its `aborted` flag is read for the n-th time. */
export function abortAtRead(n: number, reason: unknown = new Error(`aborted at check ${n}`)): CountingAbort {
  const controller = new AbortController();
  let reads = 0;
  const signal = new Proxy(controller.signal, {
    get(target, key) {
      if (key === 'aborted' && ++reads === n) controller.abort(reason);
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== 'function') return value;
      const bound: unknown = value.bind(target);
      return bound;
    },
  });
  return { signal, reads: () => reads };
}

/** What abortEverywhere needs from a backend (structural). */
interface LiveCounts {
  memory(): { readonly liveTensors: number; readonly liveBuffers: number };
}

/**
 * Runs `call` with a signal that fires on read n = 1, 2, …, maxReads. Each run must either throw
 * an error named AbortedError — after which the backend's live tensors and buffers are what they
 * were and `unchanged` holds (a cache's contents) — or complete (`call` disposes its outputs).
 * Returns how many runs were stopped after the first checkpoint, i.e. in the middle of the work.
 */
export async function abortEverywhere(backend: LiveCounts, maxReads: number, call: (signal: AbortSignal) => Promise<void>, unchanged: () => Promise<void> = () => Promise.resolve()): Promise<number> {
  const live = (): string => JSON.stringify({ tensors: backend.memory().liveTensors, buffers: backend.memory().liveBuffers });
  let midway = 0;
  for (let n = 1; n <= maxReads; n++) {
    const before = live();
    let error: unknown = null;
    try {
      await call(abortAtRead(n).signal);
    } catch (e) {
      error = e;
    }
    if (error !== null) {
      if (!(error instanceof Error) || error.name !== 'AbortedError') throw new Error(`abort at read ${n}: expected an AbortedError, got ${error instanceof Error ? `${error.name}: ${error.message}` : JSON.stringify(error)}`, { cause: error });
      if (n > 1) midway++;
      await unchanged();
    }
    const after = live();
    if (after !== before) throw new Error(`abort at read ${n}: expected live ${before} afterwards, got ${after}`);
  }
  return midway;
}
