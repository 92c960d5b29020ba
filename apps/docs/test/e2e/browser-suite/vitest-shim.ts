// What a bundled test file gets for `import … from 'vitest'` in the browser: describe / it /
// beforeAll / afterAll / beforeEach / afterEach that register into one suite, and vitest's own `expect` (chai with
// @vitest/expect's Jest matchers, as vitest installs them), so the suite runs with the same
// assertions and tolerances as under Node. `runSuite` runs what was registered, in order.
import { JestAsymmetricMatchers, JestChaiExpect, JestExtend, chai } from '@vitest/expect';

chai.use(JestExtend);
chai.use(JestChaiExpect);
chai.use(JestAsymmetricMatchers);
// whole values in failure messages: the Node side reports them as they are
chai.config.truncateThreshold = 0;

type Body = () => unknown;

interface Block {
  readonly name: string;
  readonly parent: Block | null;
  readonly beforeAll: Body[];
  readonly afterAll: Body[];
  readonly beforeEach: Body[];
  readonly afterEach: Body[];
  readonly items: (Block | Case)[];
}

interface Case {
  readonly name: string;
  readonly body: Body | null;
  readonly skip: boolean;
}

/** One test's outcome, as the Node side of the harness reads it. */
export interface CaseResult {
  readonly name: string;
  readonly status: 'passed' | 'failed' | 'skipped';
  readonly assertions: number;
  readonly ms: number;
  readonly error?: string;
}

const root: Block = { name: '', parent: null, beforeAll: [], afterAll: [], beforeEach: [], afterEach: [], items: [] };
let current: Block = root;
let assertions = 0;

export function describe(name: string, body: () => void): void {
  const block: Block = { name, parent: current, beforeAll: [], afterAll: [], beforeEach: [], afterEach: [], items: [] };
  current.items.push(block);
  current = block;
  try {
    body();
  } finally {
    current = block.parent ?? root;
  }
}

function register(name: string, body: Body | null, skip: boolean): void {
  current.items.push({ name, body, skip });
}

/** `it(name, body, timeout?)`; the timeout is the Node side's (one for the whole page). */
export const it = Object.assign((name: string, body: Body): void => register(name, body, false), {
  skip: (name: string, body?: Body): void => register(name, body ?? null, true),
});
export const test = it;

export function beforeAll(body: Body): void {
  current.beforeAll.push(body);
}

export function afterAll(body: Body): void {
  current.afterAll.push(body);
}

/** Runs before each test of the block and of its inner blocks (outer blocks' hooks first). */
export function beforeEach(body: Body): void {
  current.beforeEach.push(body);
}

/** Runs after each test of the block and of its inner blocks (inner blocks' hooks first). */
export function afterEach(body: Body): void {
  current.afterEach.push(body);
}

/** The block and its ancestors, outermost first. */
function lineage(block: Block): Block[] {
  const chain: Block[] = [];
  for (let b: Block | null = block; b; b = b.parent) chain.unshift(b);
  return chain;
}

/** vitest's expect, counting assertions so a test that asserts nothing is reported. */
export const expect = Object.assign((value: unknown, message?: string): ReturnType<typeof chai.expect> => {
  assertions++;
  return chai.expect(value, message);
}, chai.expect);

function describeError(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

/** Runs every registered test in order; a failing beforeAll fails the tests of its block, a failing beforeEach or afterEach its test. */
export async function runSuite(onResult: (r: CaseResult) => void = () => undefined): Promise<CaseResult[]> {
  const results: CaseResult[] = [];
  const record = (r: CaseResult): void => {
    results.push(r);
    onResult(r);
  };
  const run = async (block: Block, prefix: string): Promise<void> => {
    const path = block.name ? `${prefix}${block.name} > ` : prefix;
    let setupError: string | null = null;
    for (const hook of block.beforeAll) {
      try {
        await hook();
      } catch (error) {
        setupError = `beforeAll: ${describeError(error)}`;
        break;
      }
    }
    for (const item of block.items) {
      if ('items' in item) {
        await run(item, path);
        continue;
      }
      const name = path + item.name;
      if (item.skip || !item.body) {
        record({ name, status: 'skipped', assertions: 0, ms: 0 });
        continue;
      }
      if (setupError !== null) {
        record({ name, status: 'failed', assertions: 0, ms: 0, error: setupError });
        continue;
      }
      assertions = 0;
      const start = performance.now();
      const chain = lineage(block);
      let error: string | null = null;
      try {
        for (const b of chain) for (const hook of b.beforeEach) await hook();
        await item.body();
      } catch (thrown) {
        error = describeError(thrown);
      }
      for (const b of [...chain].reverse()) {
        for (const hook of b.afterEach) {
          try {
            await hook();
          } catch (thrown) {
            error ??= `afterEach: ${describeError(thrown)}`;
          }
        }
      }
      const ms = performance.now() - start;
      if (error !== null) record({ name, status: 'failed', assertions, ms, error });
      else if (assertions > 0) record({ name, status: 'passed', assertions, ms });
      else record({ name, status: 'failed', assertions, ms, error: 'the test made no assertion' });
    }
    for (const hook of block.afterAll) {
      try {
        await hook();
      } catch (error) {
        record({ name: `${path}afterAll`, status: 'failed', assertions: 0, ms: 0, error: describeError(error) });
      }
    }
  };
  await run(root, '');
  return results;
}
