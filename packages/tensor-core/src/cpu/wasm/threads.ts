// Worker threads for the SIMD kernels: each worker instantiates the kernel modules on the
// backend's shared heap (a SharedArrayBuffer-backed WebAssembly.Memory) and runs lists of calls
// to their exports; the calling thread takes the first share itself, then awaits the others.
// Operands are packed into the heap by the caller before a parallel step and results read after
// it, so workers never touch JavaScript arrays and no locks are needed: every call of one step
// writes a disjoint region.
//
// Node: worker_threads (eval'd script; a worker holds the process open only while it has calls
// in flight, so idle workers never keep a script from exiting).
// Browsers: Workers from a Blob URL; shared memory there needs cross-origin isolation, and where
// it is missing the backend runs single-threaded (CpuBackend.threads says how many it uses).

import { BackendError } from '../../errors.js';
import type { WasmHeap, WasmKernelModule } from './heap.js';

/** The worker's whole program: instantiate modules on the shared memory, run call lists. */
const WORKER_SOURCE = `
const node = typeof require === 'function';
const port = node ? require('node:worker_threads').parentPort : self;
let memory = null;
const instances = new Map();
const onMessage = (msg) => {
  if (msg.type === 'init') memory = msg.memory;
  else if (msg.type === 'module') instances.set(msg.key, new WebAssembly.Instance(msg.module, { env: { memory } }));
  else if (msg.type === 'run') {
    try {
      const f = instances.get(msg.key).exports[msg.fn];
      for (const args of msg.calls) f(...args);
      port.postMessage({ id: msg.id });
    } catch (e) {
      port.postMessage({ id: msg.id, error: String(e && e.stack || e) });
    }
  }
};
if (node) port.on('message', onMessage); else self.onmessage = (e) => onMessage(e.data);
`;

interface WorkerPort {
  post(message: unknown): void;
  terminate(): void;
  /** Keep the process alive (Node) while calls are in flight; no-ops in browsers. */
  ref(): void;
  unref(): void;
}

interface Reply {
  readonly id: number;
  readonly error?: string;
}

const isReply = (x: unknown): x is Reply => typeof x === 'object' && x !== null && 'id' in x && typeof x.id === 'number';

/** Starts one worker running WORKER_SOURCE, or returns null where this runtime has none. */
function startWorker(onReply: (reply: Reply) => void, onFailure: (error: string) => void): WorkerPort | null {
  const workerThreads = typeof process === 'object' && typeof process.getBuiltinModule === 'function' ? process.getBuiltinModule('node:worker_threads') : undefined;
  if (workerThreads) {
    const worker = new workerThreads.Worker(WORKER_SOURCE, { eval: true });
    worker.on('message', (m: unknown) => {
      if (isReply(m)) onReply(m);
    });
    worker.on('error', (e) => onFailure(String(e)));
    worker.unref(); // after the listeners: adding a 'message' listener refs the worker again
    return { post: (m) => worker.postMessage(m), terminate: () => void worker.terminate(), ref: () => worker.ref(), unref: () => worker.unref() };
  }
  const WebWorker: unknown = Reflect.get(globalThis, 'Worker');
  const blobUrl = typeof Blob === 'function' && typeof URL.createObjectURL === 'function' ? URL.createObjectURL(new Blob([WORKER_SOURCE], { type: 'text/javascript' })) : null;
  if (typeof WebWorker !== 'function' || blobUrl === null) return null;
  const worker: unknown = Reflect.construct(WebWorker, [blobUrl]);
  if (!isWebWorker(worker)) return null;
  worker.onmessage = (e) => {
    if (isReply(e.data)) onReply(e.data);
  };
  worker.onerror = (e) => onFailure(String(e.message));
  return { post: (m) => worker.postMessage(m), terminate: () => worker.terminate(), ref: () => undefined, unref: () => undefined };
}

interface WebWorkerLike {
  postMessage(m: unknown): void;
  terminate(): void;
  onmessage: ((e: { data: unknown }) => void) | null;
  onerror: ((e: { message: unknown }) => void) | null;
}

const isWebWorker = (x: unknown): x is WebWorkerLike => typeof x === 'object' && x !== null && 'postMessage' in x && 'terminate' in x;

/** Threads to use when the caller does not say: the cores this process may run on, at most 8. */
export function defaultThreadCount(): number {
  const os = typeof process === 'object' && typeof process.getBuiltinModule === 'function' ? process.getBuiltinModule('node:os') : undefined;
  const cores: unknown = os ? os.availableParallelism() : Reflect.get(Reflect.get(globalThis, 'navigator') ?? {}, 'hardwareConcurrency');
  return typeof cores === 'number' && cores >= 1 ? Math.min(8, Math.floor(cores)) : 1;
}

/** Why a heap cannot have worker threads here, or null when it can. */
export function threadsUnavailableReason(): string | null {
  if (typeof SharedArrayBuffer !== 'function') return 'no SharedArrayBuffer (in browsers: the page is not cross-origin isolated)';
  if (Reflect.get(globalThis, 'crossOriginIsolated') === false) return 'the page is not cross-origin isolated';
  const node = typeof process === 'object' && typeof process.getBuiltinModule === 'function' && process.getBuiltinModule('node:worker_threads') !== undefined;
  if (!node && typeof Reflect.get(globalThis, 'Worker') !== 'function') return 'no Worker in this runtime';
  return null;
}

/**
 * `size` threads over one shared heap: the calling thread plus size − 1 workers, started on
 * first use. `run` splits nothing itself: the caller passes one list of calls per thread.
 */
export class WasmThreadPool {
  readonly #heap: WasmHeap;
  readonly #workers: { port: WorkerPort; modules: Set<string> }[] = [];
  readonly #pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #failure: string | null = null;

  constructor(
    heap: WasmHeap,
    readonly size: number,
  ) {
    if (!heap.shared) throw new BackendError({ fn: 'WasmThreadPool', expected: 'a shared heap', got: 'an unshared one' });
    this.#heap = heap;
  }

  /**
   * Runs `calls[i]` (argument lists of export `fn` of `kernel`) on thread i, thread 0 being the
   * caller's, and resolves when every thread is done. A worker error rejects with a BackendError.
   */
  async run(kernel: WasmKernelModule, fn: string, calls: readonly (readonly number[])[][]): Promise<void> {
    if (calls.length > this.size) throw new BackendError({ fn: 'WasmThreadPool.run', expected: `at most ${this.size} call lists`, got: String(calls.length) });
    const waits: Promise<void>[] = [];
    for (let t = 1; t < calls.length; t++) {
      const list = calls[t] as (readonly number[])[];
      if (list.length === 0) continue;
      const worker = this.#worker(t - 1);
      if (!worker.modules.has(kernel.key)) {
        worker.port.post({ type: 'module', key: kernel.key, module: kernel.module });
        worker.modules.add(kernel.key);
      }
      const id = this.#nextId++;
      worker.port.ref();
      waits.push(
        new Promise<void>((resolve, reject) => this.#pending.set(id, { resolve, reject })).finally(() => {
          worker.port.unref();
        }),
      );
      worker.port.post({ type: 'run', id, key: kernel.key, fn, calls: list });
    }
    const own = kernel.instance.exports[fn];
    if (typeof own !== 'function') throw new BackendError({ fn: 'WasmThreadPool.run', expected: `an exported function ${fn}`, got: typeof own });
    try {
      for (const args of calls[0] ?? []) Reflect.apply(own, undefined, args);
    } finally {
      await Promise.all(waits);
    }
  }

  /** Stops every worker; later runs start fresh ones. */
  terminate(): void {
    for (const w of this.#workers) w.port.terminate();
    this.#workers.length = 0;
    for (const p of this.#pending.values()) p.reject(new BackendError({ fn: 'WasmThreadPool', expected: 'a running pool', got: 'terminated' }));
    this.#pending.clear();
  }

  #worker(i: number): { port: WorkerPort; modules: Set<string> } {
    if (this.#failure) throw new BackendError({ fn: 'WasmThreadPool', expected: 'running workers', got: this.#failure });
    while (this.#workers.length <= i) {
      const port = startWorker(
        (reply) => this.#settle(reply),
        (error) => this.#fail(error),
      );
      if (!port) throw new BackendError({ fn: 'WasmThreadPool', expected: 'a Worker implementation', got: 'none in this runtime' });
      port.post({ type: 'init', memory: this.#heap.memory });
      this.#workers.push({ port, modules: new Set() });
    }
    return this.#workers[i] as { port: WorkerPort; modules: Set<string> };
  }

  #settle(reply: Reply): void {
    const p = this.#pending.get(reply.id);
    if (!p) return;
    this.#pending.delete(reply.id);
    if (reply.error === undefined) p.resolve();
    else p.reject(new BackendError({ fn: 'WasmThreadPool', expected: 'the worker call to succeed', got: reply.error }));
  }

  #fail(error: string): void {
    this.#failure = error;
    this.terminate();
  }
}
