// Cooperative cancellation for long host-side loops (kernels, chunked passes). JavaScript runs
// one task at a time, so an AbortSignal can only fire while the loop has handed the event loop
// a turn: with a signal, a checkpoint yields every `everyMs` of work and then re-checks it.

import { throwIfAborted } from './errors.js';

export class AbortCheckpoint {
  readonly #signal: AbortSignal | undefined;
  readonly #fn: string;
  readonly #everyMs: number;
  #last = performance.now();

  constructor(signal: AbortSignal | undefined, fn: string, everyMs = 16) {
    this.#signal = signal;
    this.#fn = fn;
    this.#everyMs = everyMs;
  }

  /** Throws AbortedError if the signal fired; yields to the event loop when its time slice is used up. */
  async check(): Promise<void> {
    const signal = this.#signal;
    if (!signal) return;
    throwIfAborted(signal, this.#fn);
    if (performance.now() - this.#last < this.#everyMs) return;
    await new Promise<void>((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));
    this.#last = performance.now();
    throwIfAborted(signal, this.#fn);
  }
}
