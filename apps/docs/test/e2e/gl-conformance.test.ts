// The gpu.js GL modes in a real browser: tensor-core's conformance suite, the attention core's
// random dense / sparse problems and its golden cases (the gpujs-flash kernel, the composed path
// and the reference) bundled for the browser and run in headless Chromium on gpujs-webgl2 and
// gpujs-webgl (SwiftShader's software WebGL). Every case must pass with its own tolerances: the
// suites are the same files vitest runs under Node, with vitest's expect.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultGoldenDir } from '@attnkit/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Browser, SOFTWARE_WEBGL, launchChromium } from './browser.js';
import { bundleSuite } from './browser-suite/bundle.js';
import type { CaseResult } from './browser-suite/vitest-shim.js';

const GL_MODES = ['gpujs-webgl2', 'gpujs-webgl'] as const;
const ORIGIN = 'http://attnkit.test';
const resultsDir = resolve(import.meta.dirname, '../../test-results/gl-conformance');

const SUITES = [
  { name: 'tensor-core conformance', suite: 'packages/tensor-core/src/conformance.test.ts' },
  { name: 'attention core (gpujs-flash on random dense and sparse problems)', suite: 'packages/attention-mha/src/attention.test.ts' },
  {
    name: 'attention golden cases',
    suite: 'packages/attention-mha/src/golden.test.ts',
    goldenDir: defaultGoldenDir(),
    goldenData: (c: string): boolean => /^(mha|gqa|mqa)/.test(c),
  },
] as const;

let browser: Browser;
const bundles = new Map<string, string>();
const report: Record<string, unknown> = {};

beforeAll(async () => {
  for (const s of SUITES) bundles.set(s.suite, await bundleSuite(s));
  browser = await launchChromium({ args: SOFTWARE_WEBGL });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  mkdirSync(resultsDir, { recursive: true });
  writeFileSync(join(resultsDir, 'summary.json'), `${JSON.stringify(report, null, 2)}\n`);
});

/** Runs one bundled suite in a fresh page with the given backends required. */
async function runInPage(suite: string, backends: readonly string[]): Promise<{ results: CaseResult[]; problems: string[] }> {
  const page = await browser.context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  // node-shims.ts serves the embedded golden files under /golden
  const env = { ATTNKIT_BACKENDS: backends.join(','), ATTNKIT_REQUIRE_BACKENDS: backends.join(','), ATTNKIT_GOLDEN_DIR: '/golden' };
  await page.route(`${ORIGIN}/**`, (route) => {
    const path = new URL(route.request().url()).pathname;
    if (path === '/suite.js') return route.fulfill({ contentType: 'text/javascript', body: bundles.get(suite) ?? '' });
    if (path === '/') {
      const html = `<!doctype html><meta charset="utf-8"><script>globalThis.process = { env: ${JSON.stringify(env)} };</script><script type="module" src="/suite.js"></script>`;
      return route.fulfill({ contentType: 'text/html', body: html });
    }
    return route.fulfill({ status: 404, body: 'not found' });
  });
  try {
    await page.goto(`${ORIGIN}/`);
    // the module has loaded (its top-level awaits started the backends), or it threw
    for (let waited = 0; ; waited++) {
      if (problems.length > 0) return { results: [], problems };
      const ready = await page
        .waitForFunction(() => typeof Reflect.get(window, '__attnkitSuite') === 'function', undefined, { timeout: 2_000 })
        .then(() => true, () => false);
      if (ready) break;
      if (waited > 60) throw new Error(`${suite}: the bundle did not load within two minutes`);
    }
    const results = await page.evaluate(async () => {
      const run: unknown = Reflect.get(window, '__attnkitSuite');
      if (typeof run !== 'function') throw new Error('the suite bundle did not load');
      const value: unknown = await Reflect.apply(run, window, []);
      return JSON.stringify(value);
    });
    return { results: JSON.parse(results) as CaseResult[], problems };
  } finally {
    await page.close();
  }
}

describe('the gpu.js GL modes in Chromium (SwiftShader WebGL)', () => {
  for (const s of SUITES) {
    it(`${s.name}: every case passes on ${GL_MODES.join(' and ')}`, async () => {
      const start = performance.now();
      const { results, problems } = await runInPage(s.suite, GL_MODES);
      const seconds = (performance.now() - start) / 1000;
      const failed = results.filter((r) => r.status !== 'passed').map((r) => `${r.status}: ${r.name}${r.error ? ` — ${r.error}` : ''}`);
      const perMode = Object.fromEntries(GL_MODES.map((m) => [m, results.filter((r) => r.name.includes(`on ${m} > `)).length]));
      report[s.name] = { cases: results.length, perMode, failed, seconds: Number(seconds.toFixed(1)) };
      expect(problems).toEqual([]);
      expect(failed).toEqual([]);
      // each mode ran the same cases, and there were some
      for (const m of GL_MODES) expect(perMode[m], m).toBeGreaterThan(0);
      expect(new Set(Object.values(perMode)).size).toBe(1);
    }, 900_000);
  }
});
