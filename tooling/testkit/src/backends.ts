// One describe block per backend: the scaffolding every multi-backend suite needs (make the
// backend before the tests, dispose it after them, optionally check that each test released
// what it allocated). The backends come from the caller — in this repository
// `availableBackends()` of @attnkit/tensor-core/testing, which honours ATTNKIT_BACKENDS and
// ATTNKIT_REQUIRE_BACKENDS — so testkit stays free of a tensor-core dependency (the types below
// are structural).
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect } from 'vitest';

/** What the scaffolding needs from a backend: that it can be disposed. */
export interface DisposableBackend {
  dispose(): Promise<void>;
}

/** What the leak check reads (tensor-core's `Backend.memory()` has it). */
interface LiveCounts {
  memory(): { readonly liveTensors: number; readonly liveBuffers: number };
}

/** A named way to make a backend (tensor-core's `TestBackend` is one). */
export interface BackendFactory<N extends string, B extends DisposableBackend> {
  readonly name: N;
  create(): Promise<B>;
}

export interface EachBackendOptions {
  /**
   * `'block'` (default): one backend serves every test of the block, made before the first and
   * disposed after the last, so its compiled kernels and pipelines serve them all. `'test'`:
   * each test gets a fresh backend, disposed after it (for suites that check a backend's
   * counters from zero); every test then compiles what it runs again, which costs minutes on
   * lavapipe with a cold shader cache.
   */
  readonly lifetime?: 'block' | 'test';
  /**
   * After each test that passed, the backend's live tensors and buffers must be what they were
   * before it (read through the backend's `memory()`; a backend without one is not checked).
   */
  readonly checkLeaks?: boolean;
}

/** The backend's getter for a suite's body: valid inside tests and hooks, not while registering. */
export type BackendGetter<B> = () => B;

/**
 * Registers `describe(title(name), …)` for each backend, with the backend made and disposed
 * around its tests. `body` registers the tests; it gets a getter for the backend (valid inside
 * tests and hooks, not while registering) and the backend's name. Hooks `body` adds run inside
 * the backend's lifetime: its `afterEach` runs before the backend is disposed (and before the
 * leak check).
 */
export function describeEachBackend<N extends string, B extends DisposableBackend>(
  backends: readonly BackendFactory<N, B>[],
  title: (name: N) => string,
  body: (backend: BackendGetter<B>, name: N) => void,
  options: EachBackendOptions = {},
): void {
  for (const factory of backends) describeWith(factory, title(factory.name), body, options);
}

/**
 * For a suite of one backend's own kernels (the WGSL kernels need gpujs-webgpu): registers
 * `describe(title, …)` with that backend made and disposed as `describeEachBackend` does when
 * `name` is among `backends`, else the same block skipped — its tests still listed, as skipped —
 * when the backend does not start here or ATTNKIT_BACKENDS leaves it out. (A backend CI requires
 * through ATTNKIT_REQUIRE_BACKENDS fails in `availableBackends()` instead of being skipped.)
 */
export function describeOnBackend<N extends string, B extends DisposableBackend>(
  backends: readonly BackendFactory<N, B>[],
  name: N,
  title: string,
  body: (backend: BackendGetter<B>) => void,
  options: EachBackendOptions = {},
): void {
  const factory = backends.find((f) => f.name === name);
  if (factory) {
    describeWith(factory, title, body, options);
    return;
  }
  describe.skip(title, () => {
    body(() => {
      throw new Error(`the ${name} backend is not available here: "${title}" is skipped`);
    });
  });
}

function describeWith<N extends string, B extends DisposableBackend>(factory: BackendFactory<N, B>, title: string, body: (backend: BackendGetter<B>, name: N) => void, options: EachBackendOptions): void {
  const [setUp, tearDown] = options.lifetime === 'test' ? [beforeEach, afterEach] : [beforeAll, afterAll];
  describe(title, () => {
    let current: B | null = null;
    setUp(async () => {
      current = await factory.create();
    });
    // vitest runs after-hooks in the reverse order of registration: this one runs after the
    // body's afterEach (which releases the test's leftovers) and before the backend is disposed.
    tearDown(async () => {
      const made = current;
      current = null;
      await made?.dispose();
    });
    if (options.checkLeaks === true) checkLeaks(() => current);
    body(() => {
      if (!current) throw new Error(`the ${factory.name} backend exists only while a test of "${title}" runs`);
      return current;
    }, factory.name);
  });
}

function hasLiveCounts(backend: unknown): backend is LiveCounts {
  return typeof backend === 'object' && backend !== null && 'memory' in backend && typeof backend.memory === 'function';
}

/** Registers the per-test leak check: live tensors and buffers after a passing test as before it. */
function checkLeaks(current: () => DisposableBackend | null): void {
  const live = (): { tensors: number; buffers: number } | null => {
    const backend = current();
    if (!hasLiveCounts(backend)) return null;
    const { liveTensors, liveBuffers } = backend.memory();
    return { tensors: liveTensors, buffers: liveBuffers };
  };
  let before: { tensors: number; buffers: number } | null = null;
  beforeEach(() => {
    before = live();
  });
  afterEach(({ task }) => {
    if (before === null || task.result?.state === 'fail') return;
    expect(live(), 'live tensors and buffers after the test (everything it made released)').toEqual(before);
  });
}
