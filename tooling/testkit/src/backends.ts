// One describe block per backend: the scaffolding every multi-backend suite needs (make the
// backend before the tests, dispose it after them). The backends come from the caller — in this
// repository `availableBackends()` of @attnkit/tensor-core/testing, which honours
// ATTNKIT_BACKENDS and ATTNKIT_REQUIRE_BACKENDS — so testkit stays free of a tensor-core
// dependency (the types below are structural).
import { afterAll, afterEach, beforeAll, beforeEach, describe } from 'vitest';

/** What the scaffolding needs from a backend: that it can be disposed. */
export interface DisposableBackend {
  dispose(): Promise<void>;
}

/** A named way to make a backend (tensor-core's `TestBackend` is one). */
export interface BackendFactory<N extends string, B extends DisposableBackend> {
  readonly name: N;
  create(): Promise<B>;
}

export interface EachBackendOptions {
  /**
   * `'block'` (default): one backend serves every test of the block, made before the first and
   * disposed after the last. `'test'`: each test gets a fresh backend, disposed after it (for
   * suites that check a backend's counters from zero or must not share compiled kernels).
   */
  readonly lifetime?: 'block' | 'test';
}

/**
 * Registers `describe(title(name), …)` for each backend, with the backend made and disposed
 * around its tests. `body` registers the tests; it gets a getter for the backend (valid inside
 * tests and hooks, not while registering) and the backend's name. Hooks `body` adds run inside
 * the backend's lifetime: its `afterEach` runs before the backend is disposed.
 */
export function describeEachBackend<N extends string, B extends DisposableBackend>(
  backends: readonly BackendFactory<N, B>[],
  title: (name: N) => string,
  body: (backend: () => B, name: N) => void,
  options: EachBackendOptions = {},
): void {
  const [setUp, tearDown] = options.lifetime === 'test' ? [beforeEach, afterEach] : [beforeAll, afterAll];
  for (const factory of backends) {
    describe(title(factory.name), () => {
      let current: B | null = null;
      setUp(async () => {
        current = await factory.create();
      });
      tearDown(async () => {
        const made = current;
        current = null;
        await made?.dispose();
      });
      body(() => {
        if (!current) throw new Error(`the ${factory.name} backend exists only while a test of "${title(factory.name)}" runs`);
        return current;
      }, factory.name);
    });
  }
}
