// Cooperative cancellation for the host kernels: JavaScript runs one task at a time, so an
// AbortSignal can only fire while a kernel has handed the event loop a turn. With a signal, a
// checkpoint yields every `everyMs` of work and then re-checks it.

import { throwIfAborted } from '@attnkit/tensor-core';

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
    await new Promise<void>((resolve) => setTimeout(resolve, 0));
    this.#last = performance.now();
    throwIfAborted(signal, this.#fn);
  }
}
