// End-to-end: the built site in Debian's headless Chromium. Loads every page, runs every demo,
// checks the numbers they show against the specification, and saves screenshots under
// apps/docs/test-results/e2e/. Runs inside `pnpm test`; the site is built first through turbo
// (a cache hit when nothing changed).
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from '@attnkit/reference-model';
import { loadModelFromFolder } from '@attnkit/reference-model/node';
import { CpuBackend } from '@attnkit/tensor-core';
import { type Browser, SOFTWARE_WEBGL, launchChromium } from './browser.js';
import { type StaticSite, serveStatic } from './server.js';

const docsDir = resolve(import.meta.dirname, '../..');
const repoRoot = resolve(docsDir, '../..');
const distDir = join(docsDir, '.vitepress', 'dist');
const shotsDir = join(docsDir, 'test-results', 'e2e');
const CHECKPOINTS = join(repoRoot, 'apps', 'reference-model', 'checkpoints');

let site: StaticSite;
let browser: Browser;
const summary: Record<string, unknown> = {};

beforeAll(async () => {
  await promisify(execFile)('pnpm', ['exec', 'turbo', 'run', 'build', '--filter=@attnkit/docs', '--output-logs=errors-only'], {
    cwd: repoRoot,
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
    maxBuffer: 64 * 1024 * 1024,
  });
  rmSync(shotsDir, { recursive: true, force: true });
  mkdirSync(join(shotsDir, 'pages'), { recursive: true });
  site = await serveStatic(distDir);
  browser = await launchChromium({ args: SOFTWARE_WEBGL });
}, 900_000);

afterAll(async () => {
  await browser?.close();
  await site?.close();
  if (Object.keys(summary).length > 0) writeFileSync(join(shotsDir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
});

/** Every page of the built site as a clean URL path. */
function sitePages(): string[] {
  const pages: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'assets') walk(path);
      } else if (entry.name.endsWith('.html') && entry.name !== '404.html') {
        const rel = relative(distDir, path).split(sep).join('/');
        pages.push(`/${rel.replace(/(^|\/)index\.html$/, '$1').replace(/\.html$/, '')}`);
      }
    }
  };
  walk(distDir);
  return pages.sort();
}

/** A tab that records page errors and console errors. */
async function tab(): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console error: ${message.text()}`);
  });
  return { page, problems };
}

async function visit(page: Page, problems: string[], path: string): Promise<void> {
  const response = await page.goto(site.origin + path, { waitUntil: 'load' });
  if (response?.status() !== 200) problems.push(`HTTP ${response?.status()} for ${path}`);
}

/** Opens a page in a new tab, recording page errors and console errors. */
async function open(path: string): Promise<{ page: Page; problems: string[] }> {
  const opened = await tab();
  await visit(opened.page, opened.problems, path);
  return opened;
}

/** Navigates with the site's own router (captured as window.__e2eRouter) and reports what it rendered. */
function routeTo(page: Page, path: string): Promise<{ notFound: boolean; h1: string; math: number }> {
  return page.evaluate(async (to) => {
    const get = (o: unknown, key: PropertyKey): unknown => (typeof o === 'object' && o !== null ? Reflect.get(o, key) : undefined);
    const router = get(window, '__e2eRouter');
    const go = get(router, 'go');
    if (typeof go !== 'function') throw new Error('no router');
    await Reflect.apply(go, router, [to]);
    await new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)));
    return {
      notFound: get(get(get(router, 'route'), 'data'), 'isNotFound') === true,
      h1: document.querySelector('h1')?.textContent ?? '',
      math: document.querySelectorAll('mjx-container').length,
    };
  }, path);
}

const text = (s: string | null): string => (s ?? '').replace(/\s+/g, ' ').trim();

/** A table row: its data-label and the text of each data-col cell. */
interface TableRow {
  readonly label: string;
  readonly [column: string]: string;
}

async function tableRows(page: Page, rowSelector: string): Promise<TableRow[]> {
  return page.$$eval(rowSelector, (rows) =>
    rows.map((row) => {
      const out: { label: string; [column: string]: string } = { label: row.getAttribute('data-label') ?? '' };
      for (const cell of Array.from(row.querySelectorAll('[data-col]'))) out[cell.getAttribute('data-col') ?? '?'] = cell.textContent ?? '';
      return out;
    }),
  );
}

const normalise = (rows: TableRow[]): TableRow[] =>
  rows.map((r) => {
    const out: { label: string; [column: string]: string } = { label: text(r.label) };
    for (const [k, v] of Object.entries(r)) out[k] = text(v);
    return out;
  });

/** Spec §5 (DeepSeek-V3): label prefix, elements / token / layer, × 61 layers, bf16 per token. */
const SPEC_5: readonly (readonly [string, string, string, string])[] = [
  ["MHA with V3's head dims", '40 960', '2 498 560', '4.77 MiB'],
  ['MHA, 128 heads × 128', '32 768', '1 998 848', '3.81 MiB'],
  ['GQA, 8 kv heads × 128', '2 048', '124 928', '244 KiB'],
  ['MQA, 1 kv head, K 192 / V 128', '320', '19 520', '38.1 KiB'],
  ['MLA', '576', '35 136', '68.6 KiB'],
  ['DSA (MLA + indexer key 128)', '704', '42 944', '83.9 KiB'],
  ['DSA, deployed fp8', '704', '42 944', '46.9 KiB'],
  ['NSA (paper model', '1 360', '—', '—'],
];

function expectSpecRows(rows: TableRow[]): void {
  expect(rows).toHaveLength(SPEC_5.length);
  SPEC_5.forEach(([label, elements, all, bytes], i) => {
    const row = rows[i];
    expect(row?.label.startsWith(label), `row ${i}: "${row?.label}" should start with "${label}"`).toBe(true);
    expect(row?.elements, label).toBe(elements);
    expect(row?.['elements-all'], label).toBe(all);
    expect(row?.['bytes-token'], label).toBe(bytes);
  });
}

function parseCounts(json: string | null): number[] {
  const value: unknown = JSON.parse(json ?? 'null');
  if (!Array.isArray(value) || !value.every((x) => typeof x === 'number')) throw new Error(`not a list of numbers: ${json}`);
  return value;
}

/**
 * The visualiser's sparse numbers against the rules of spec §3–4, for S tokens, H heads, Hkv kv
 * heads: DSA keeps min(topk, i + 1) keys per query; NSA picks min(n, ⌊i/l′⌋ + 1) distinct blocks
 * per query and kv head — block 0, the query's own and the one before it among them, none after
 * it — so every head reads (blocks − 1)·l′ whole blocks plus its own block up to i; the window
 * holds min(w, i + 1) keys; the compressed branch sees the blocks complete at i; gates are in (0, 1).
 */
async function expectSparseNumbers(page: Page, S: number, H: number, Hkv: number): Promise<{ dsaLast: number; nsaLast: number; dsaLastKeys: number[] }> {
  const dsa = page.locator('[data-testid="viz-dsa"]');
  const nsa = page.locator('[data-testid="viz-nsa"]');
  await dsa.waitFor({ timeout: 120_000 });
  await nsa.waitFor({ timeout: 120_000 });
  // the numbers of the current input: as many rows as tokens
  await page.waitForFunction((s) => {
    const counts: unknown = JSON.parse(document.querySelector('[data-testid="viz-dsa"]')?.getAttribute('data-counts') ?? '[]');
    return Array.isArray(counts) && counts.length === s;
  }, S);
  const topk = Number(await dsa.getAttribute('data-topk'));
  const dsaCounts = parseCounts(await dsa.getAttribute('data-counts'));
  expect(dsaCounts).toEqual(Array.from({ length: S }, (_, i) => Math.min(topk, i + 1)));
  const dsaLast = Number(text(await page.locator('[data-testid="viz-dsa-last"]').textContent()));
  expect(dsaLast).toBe(Math.min(topk, S));
  const dsaLastKeys = parseCounts(await dsa.getAttribute('data-last-keys'));
  expect(dsaLastKeys).toHaveLength(dsaLast);

  const config = JSON.parse((await nsa.getAttribute('data-config')) ?? '{}') as Record<string, number>;
  const { l = 0, d = 0, lp = 0, n = 0, w = 0 } = config;
  const blocks = parseCounts(await nsa.getAttribute('data-blocks'));
  const selected = parseCounts(await nsa.getAttribute('data-selected-counts'));
  expect(blocks).toHaveLength(S * Hkv * n);
  expect(selected).toHaveLength(H * S);
  for (let i = 0; i < S; i++) {
    const own = Math.floor(i / lp);
    const count = Math.min(n, own + 1);
    for (let g = 0; g < Hkv; g++) {
      const picked = blocks.slice((i * Hkv + g) * n, (i * Hkv + g + 1) * n).filter((b) => b >= 0);
      expect(new Set(picked).size, `query ${i}, kv head ${g}: ${picked.join(' ')}`).toBe(count);
      expect(picked.every((b) => b <= own)).toBe(true);
      for (const forced of [0, own, own - 1]) if (forced >= 0) expect(picked).toContain(forced);
    }
    for (let h = 0; h < H; h++) expect(selected[h * S + i], `head ${h}, query ${i}`).toBe((count - 1) * lp + (i % lp) + 1);
  }
  expect(parseCounts(await nsa.getAttribute('data-window-counts'))).toEqual(Array.from({ length: S }, (_, i) => Math.min(w, i + 1)));
  const complete = (i: number): number => (i + 1 < l ? 0 : Math.floor((i + 1 - l) / d) + 1);
  expect(parseCounts(await nsa.getAttribute('data-compressed-counts'))).toEqual(
    Array.from({ length: S }, (_, i) => (complete(i) === 0 ? 0 : (complete(i) - 1) * d + l)),
  );
  const gates = parseCounts(await nsa.getAttribute('data-gates'));
  expect(gates).toHaveLength(S * H * 3);
  expect(gates.every((x) => x > 0 && x < 1)).toBe(true);
  const nsaLast = Number(text(await page.locator('[data-testid="viz-nsa-last"]').textContent()));
  expect(nsaLast).toBe(selected[S - 1]);
  return { dsaLast, nsaLast, dsaLastKeys };
}

/** The model demo's check line: its logits against PyTorch's, within the checkpoint's tolerance. */
async function expectLogitsMatch(page: Page): Promise<number> {
  const check = page.locator('[data-testid="model-check"]');
  await check.waitFor({ timeout: 300_000 });
  const diff = Number(await check.getAttribute('data-max-abs-diff'));
  expect(Number(await check.getAttribute('data-positions'))).toBe(160);
  expect(diff).toBeLessThanOrEqual(Number(await check.getAttribute('data-tolerance')));
  return diff;
}

/** Greedy generation in the page shows what the same generation gives in Node on the CPU backend. */
async function expectGreedyAsNode(page: Page, checkpoint: string, prompt: string, maxTokens: number): Promise<string> {
  await page.fill('[data-testid="model-prompt"]', prompt);
  await page.fill('[data-testid="model-max-tokens"]', String(maxTokens));
  await page.fill('[data-testid="model-temperature"]', '0');
  const runs = Number((await page.locator('[data-testid="model-demo"]').getAttribute('data-runs')) ?? '0');
  await page.click('[data-testid="model-generate"]');
  await page.waitForFunction((n) => document.querySelector('[data-testid="model-demo"]')?.getAttribute('data-runs') === String(n), runs + 1, { timeout: 300_000 });
  const result = page.locator('[data-testid="model-result"]');
  expect(Number(await result.getAttribute('data-tokens'))).toBe(maxTokens);
  expect(Number(await result.getAttribute('data-prompt-tokens'))).toBe(new TextEncoder().encode(prompt).length);
  expect(await result.getAttribute('data-stop-reason')).toBe('length');
  const shown = (await page.locator('[data-testid="model-output"]').textContent()) ?? '';
  const cpu = new CpuBackend();
  try {
    using model = await loadModelFromFolder(cpu, join(CHECKPOINTS, checkpoint));
    const node = await generate(model, prompt, { maxTokens, temperature: 0 });
    expect(shown).toBe(prompt + node.text);
    expect(Number(await result.getAttribute('data-kv-bytes-per-token'))).toBe(model.kvBytesPerToken);
  } finally {
    await cpu.dispose();
  }
  return shown;
}

/**
 * Chromium without WebGPU (no adapter here) runs a demo on WebGL2 and says so: the badge names
 * gpujs-webgl2 and lists gpujs-webgpu as tried first, with its reason.
 */
async function expectWebGl2Badge(page: Page): Promise<string> {
  const badge = page.locator('[data-testid="backend"]');
  expect(await badge.getAttribute('data-backend')).toBe('gpujs-webgl2');
  const shown = text(await badge.textContent());
  expect(shown).toContain('Runs on gpujs-webgl2 (WebGL2');
  expect(shown).toContain('1 backend tried first');
  expect(shown).toMatch(/gpujs-webgpu: \[createGpujsBackend\] expected gpu\.js mode 'webgpu' to start, got .+/);
  expect(shown).not.toContain('the plain CPU backend');
  return shown;
}

describe('the documentation site in Chromium', () => {
  it('serves every page, renders each one in Chromium without errors, math included', async () => {
    const pages = sitePages();
    expect(pages.length).toBeGreaterThan(20);
    for (const required of ['/', '/guide/getting-started', '/concepts/', '/concepts/kv-cache', '/demos/kv-calculator', '/demos/attention-visualiser', '/demos/reference-model', '/api/']) {
      expect(pages).toContain(required);
    }
    const failures: string[] = [];

    // 1. The static HTML of every page, as a crawler or a reader without JavaScript gets it.
    for (const path of pages) {
      const response = await fetch(site.origin + path);
      const html = await response.text();
      if (response.status !== 200) failures.push(`${path}: HTTP ${response.status}`);
      if (!/<h1[\s>]/.test(html)) failures.push(`${path}: no <h1> in the HTML`);
    }

    // 2. Every page rendered by the site's own router in one tab (as a reader clicking through
    //    it), so each page's component mounts and runs; errors are collected across the walk.
    const { page, problems } = await tab();
    await visit(page, problems, '/');
    await page.evaluate(() => {
      const get = (o: unknown, key: PropertyKey): unknown => (typeof o === 'object' && o !== null ? Reflect.get(o, key) : undefined);
      // VitePress provides its router to the Vue app under a symbol: find the object with go() and route
      const provides = get(get(get(document.querySelector('#app'), '__vue_app__'), '_context'), 'provides');
      if (typeof provides !== 'object' || provides === null) throw new Error('no Vue app on #app');
      const router = Object.getOwnPropertySymbols(provides)
        .map((key) => get(provides, key))
        .find((value) => typeof get(value, 'go') === 'function' && get(value, 'route') !== undefined);
      if (!router) throw new Error("VitePress' router was not found");
      Reflect.set(window, '__e2eRouter', router);
    });
    for (const path of pages) {
      problems.length = 0;
      const shown = await routeTo(page, path);
      if (shown.notFound) problems.push('the router found no page');
      if (!text(shown.h1)) problems.push('no <h1> after rendering');
      if (path.startsWith('/concepts/') && path !== '/concepts/kv-cache' && shown.math === 0) problems.push('no rendered math');
      failures.push(...problems.map((p) => `${path}: ${p}`));
    }
    // The walk's checks do catch a page that is not there.
    expect((await routeTo(page, '/no-such-page')).notFound).toBe(true);
    await page.close();
    summary.pages = pages.length;
    expect(failures).toEqual([]);
  }, 600_000);

  it('loads the hand-written pages directly and screenshots them', async () => {
    const { page, problems } = await tab();
    const failures: string[] = [];
    for (const path of sitePages().filter((p) => !p.startsWith('/api/'))) {
      problems.length = 0;
      await visit(page, problems, path);
      await page.locator('h1').first().waitFor();
      const name = path === '/' ? 'home' : path.slice(1).replace(/\/$/, '').replaceAll('/', '_');
      await page.screenshot({ path: join(shotsDir, 'pages', `${name}.png`), fullPage: true });
      failures.push(...problems.map((p) => `${path}: ${p}`));
    }
    await page.close();
    expect(failures).toEqual([]);
  }, 600_000);

  it('the API reference is generated from the sources', async () => {
    const { page, problems } = await open('/api/@attnkit/attention-mha/functions/attention');
    expect(text(await page.locator('.vp-doc').textContent())).toContain('function attention(');
    expect(text(await page.locator('.vp-doc').textContent())).toContain('Query head h reads kv head');
    const { page: gpu } = await open('/api/');
    expect(text(await gpu.locator('.vp-doc').textContent())).toContain('@attnkit/tensor-core/gpu');
    expect(problems).toEqual([]);
    await page.close();
    await gpu.close();
  }, 120_000);

  it('the KV-cache calculator matches spec §5 for DeepSeek-V3 and the backend agrees to the byte', async () => {
    const { page, problems } = await open('/demos/kv-calculator');
    await page.locator('[data-testid="kv-summary"][data-all-match="true"]').waitFor({ timeout: 120_000 });

    const badge = await expectWebGl2Badge(page);
    summary.backend = 'gpujs-webgl2';
    summary.backendBadge = badge;

    const v3 = normalise(await tableRows(page, '[data-testid="kv-row"]'));
    expectSpecRows(v3);
    expect(v3.every((r) => (r.measured ?? '').startsWith('✓'))).toBe(true);
    expect(v3.find((r) => r.label.startsWith('MLA'))?.['bytes-layer']).toBe('1 152 B');
    expect(v3.find((r) => r.label.startsWith('DSA, deployed fp8'))?.['bytes-layer']).toBe('788 B');
    await page.screenshot({ path: join(shotsDir, 'kv-calculator-deepseek-v3.png'), fullPage: true });

    // f32 doubles every float row; the deployed fp8 row keeps its storage
    await page.selectOption('[data-testid="kv-dtype"]', 'f32');
    await page.locator('[data-testid="kv-summary"][data-all-match="true"]').waitFor();
    const f32 = normalise(await tableRows(page, '[data-testid="kv-row"]'));
    expect(f32.find((r) => r.label.startsWith('MLA'))?.['bytes-token']).toBe('137 KiB'); // 576 · 4 · 61 = 140 544 B
    expect(f32.find((r) => r.label.startsWith('DSA, deployed fp8'))?.['bytes-token']).toBe('46.9 KiB');

    // fp8 with block scales, checked against the backend's allocation
    await page.selectOption('[data-testid="kv-dtype"]', 'fp8e4m3');
    await page.locator('[data-testid="kv-summary"][data-all-match="true"]').waitFor();
    const fp8 = normalise(await tableRows(page, '[data-testid="kv-row"]'));
    expect(fp8.find((r) => r.label.startsWith('GQA'))?.['bytes-layer']).toBe('2 112 B'); // 2 048 codes + 16 scales

    // Llama-3-70B: GQA with 8 kv heads over 80 layers, a 128K context
    await page.selectOption('[data-testid="kv-dtype"]', 'bf16');
    await page.selectOption('[data-testid="kv-preset"]', 'llama-3-70b');
    await page.fill('[data-testid="kv-tokens"]', '131072');
    await page.locator('[data-testid="kv-summary"][data-all-match="true"]').waitFor();
    const llama = normalise(await tableRows(page, '[data-testid="kv-row"]'));
    expect(llama[0]).toMatchObject({ elements: '2 048', 'elements-all': '163 840', 'bytes-token': '320 KiB', 'bytes-total': '40 GiB' });
    expect(llama[0]?.label).toMatch(/^GQA, 8 kv heads/);
    expect(text(await page.locator('[data-testid="kv-sources"]').textContent())).toContain('arXiv:2407.21783');

    // A custom configuration starts from the selected model
    await page.selectOption('[data-testid="kv-preset"]', 'custom');
    await page.locator('[data-testid="kv-custom"]').waitFor();
    await page.fill('[data-testid="kv-custom-layers"]', '10');
    await page.locator('[data-testid="kv-summary"][data-all-match="true"]').waitFor();
    const custom = normalise(await tableRows(page, '[data-testid="kv-row"]'));
    expect(custom.find((r) => r.label.startsWith('MHA, 64 heads'))?.['elements-all']).toBe('163 840'); // 16 384 · 10
    await page.screenshot({ path: join(shotsDir, 'kv-calculator-custom.png'), fullPage: true });

    expect(problems).toEqual([]);
    await page.close();
  }, 300_000);

  it('the attention visualiser draws every head and agrees with attention()', async () => {
    const { page, problems } = await open('/demos/attention-visualiser');
    const check = page.locator('[data-testid="viz-check"]');
    await check.waitFor({ timeout: 120_000 });
    await expectWebGl2Badge(page);

    const checkValues = async (): Promise<[number, number]> => [
      Number(await check.getAttribute('data-max-abs-diff')),
      Number(await check.getAttribute('data-row-sum-error')),
    ];
    const [diff, rowSum] = await checkValues();
    expect(diff).toBeLessThan(1e-4);
    expect(rowSum).toBeLessThan(1e-5);
    summary.visualiserMaxAbsDiff = diff;
    expect(await page.locator('[data-testid="viz-head"] canvas').count()).toBe(4);

    // Causal: the top-right cell is masked (grey), the diagonal is coloured, the picture varies
    const pixels = (): Promise<{ topRight: number[]; bottomLeft: number[]; colours: number }> =>
      page.$eval('[data-testid="viz-head"] canvas', (canvas) => {
        if (!(canvas instanceof HTMLCanvasElement)) throw new Error('not a canvas');
        const ctx = canvas.getContext('2d');
        if (!ctx) throw new Error('no 2d context');
        const at = (x: number, y: number): number[] => Array.from(ctx.getImageData(x, y, 1, 1).data);
        const all = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
        const colours = new Set<number>();
        for (let i = 0; i < all.length; i += 4) colours.add(((all[i] ?? 0) << 16) | ((all[i + 1] ?? 0) << 8) | (all[i + 2] ?? 0));
        return { topRight: at(canvas.width - 2, 1), bottomLeft: at(1, canvas.height - 2), colours: colours.size };
      });
    const causal = await pixels();
    expect(causal.topRight).toEqual([226, 226, 230, 255]);
    expect(causal.bottomLeft).not.toEqual([226, 226, 230, 255]);
    expect(causal.colours).toBeGreaterThan(20);
    await page.screenshot({ path: join(shotsDir, 'attention-visualiser.png'), fullPage: true });

    // NSA's and DSA's picks on the same input, beside the dense heatmaps
    expect(await page.locator('[data-testid="viz-nsa-head"] canvas').count()).toBe(4);
    expect(await page.locator('[data-testid="viz-dsa-head"] canvas').count()).toBe(4);
    const sparse = await expectSparseNumbers(page, 32, 4, 2);
    summary.visualiserDsaLastRow = sparse.dsaLast;
    summary.visualiserNsaLastRow = sparse.nsaLast;
    // the DSA panel shows the dense colour on its picks and a faded one elsewhere (last row, head 0)
    const lastRow = await page.evaluate(() => {
      const canvases = ['viz-head', 'viz-dsa-head'].map((id) => document.querySelector(`[data-testid="${id}"] canvas`));
      return canvases.map((canvas) => {
        if (!(canvas instanceof HTMLCanvasElement)) throw new Error('not a canvas');
        const ctx = canvas.getContext('2d');
        if (!ctx) throw new Error('no 2d context');
        const cell = canvas.width / 32;
        return Array.from({ length: 32 }, (_, t) => Array.from(ctx.getImageData(Math.floor((t + 0.5) * cell), Math.floor(31.5 * cell), 1, 1).data).join(','));
      });
    });
    const [denseRow = [], dsaRow = []] = lastRow;
    expect(denseRow.map((px, t) => px === dsaRow[t])).toEqual(Array.from({ length: 32 }, (_, t) => sparse.dsaLastKeys.includes(t)));

    // a smaller top-k and a larger NSA window; the window branch on the NSA panels
    await page.fill('[data-testid="viz-dsa-topk"]', '3');
    await page.fill('[data-testid="viz-nsa-window"]', '12');
    await page.waitForFunction(() => {
      const shown = document.querySelector('[data-testid="viz-nsa"]')?.getAttribute('data-config') ?? '{}';
      return document.querySelector('[data-testid="viz-dsa"]')?.getAttribute('data-topk') === '3' && (JSON.parse(shown) as { w?: number }).w === 12;
    });
    await page.selectOption('[data-testid="viz-nsa-branch"]', 'window');
    await page.locator('[data-testid="viz-nsa"][data-branch="window"]').waitFor();
    await expectSparseNumbers(page, 32, 4, 2);
    const windowCounts = parseCounts(await page.locator('[data-testid="viz-nsa"]').getAttribute('data-counts'));
    expect(windowCounts).toEqual(Array.from({ length: 32 }, (_, i) => Math.min(12, i + 1)));
    await page.screenshot({ path: join(shotsDir, 'attention-visualiser-nsa-window.png'), fullPage: true });
    await page.selectOption('[data-testid="viz-nsa-branch"]', 'selected');
    await page.fill('[data-testid="viz-dsa-topk"]', '8');
    await page.fill('[data-testid="viz-nsa-window"]', '8');
    await page.locator('[data-testid="viz-dsa"][data-topk="8"]').waitFor();

    // MQA over 6 heads, no mask
    await page.fill('[data-testid="viz-heads"]', '6');
    await page.fill('[data-testid="viz-kvheads"]', '1');
    await page.uncheck('[data-testid="viz-causal"]');
    await page.locator('[data-testid="viz-head"] canvas').nth(5).waitFor();
    await page.waitForFunction(() => document.querySelectorAll('[data-testid="viz-head"] figcaption')[5]?.textContent?.includes('kv head 0'));
    expect((await checkValues())[0]).toBeLessThan(1e-4);
    expect((await pixels()).topRight).not.toEqual([226, 226, 230, 255]);

    await expectSparseNumbers(page, 32, 6, 1);
    await page.screenshot({ path: join(shotsDir, 'attention-visualiser-mqa.png'), fullPage: true });

    expect(problems).toEqual([]);
    await page.close();
  }, 300_000);

  it('the reference model loads the default checkpoint, matches PyTorch, and generates what Node generates', async () => {
    const { page, problems } = await open('/demos/reference-model');
    const check = page.locator('[data-testid="model-check"]');
    await check.waitFor({ timeout: 300_000 });
    await expectWebGl2Badge(page);
    summary.modelBackend = 'gpujs-webgl2';

    // the default checkpoint, as checkpoints/DEFAULT names it, checked against its expected logits
    const defaultName = readFileSync(join(CHECKPOINTS, 'DEFAULT'), 'utf8').trim();
    expect(await page.locator('[data-testid="model-checkpoint"]').inputValue()).toBe(defaultName);
    const diff = await expectLogitsMatch(page);
    summary.modelCheckpoint = defaultName;
    summary.modelLogitsMaxAbsDiff = diff;

    // WebGL2 on SwiftShader decodes ~1 token/s (every kernel result is read back): a short
    // generation checks the numbers; the long decode loop runs on WebAssembly below
    const shown = await expectGreedyAsNode(page, defaultName, 'A fool ', 32);
    summary.modelGreedyText = shown;
    summary.modelStats = text(await page.locator('[data-testid="model-result"]').textContent());
    await page.screenshot({ path: join(shotsDir, 'reference-model.png'), fullPage: true });

    // sampling with a seed, then another checkpoint
    await page.fill('[data-testid="model-temperature"]', '0.8');
    await page.fill('[data-testid="model-max-tokens"]', '12');
    await page.click('[data-testid="model-generate"]');
    await page.waitForFunction(() => document.querySelector('[data-testid="model-result"]')?.getAttribute('data-tokens') === '12', undefined, { timeout: 120_000 });
    await page.selectOption('[data-testid="model-checkpoint"]', 'fortunes-nsa');
    await page.waitForFunction(() => document.querySelector('[data-testid="model-status"]')?.textContent?.includes('NSA attention'), undefined, { timeout: 300_000 });
    summary.modelNsaLogitsMaxAbsDiff = await expectLogitsMatch(page);

    expect(problems).toEqual([]);
    await page.close();
  }, 600_000);

  it('?backend=gpujs-webasm runs the reference model on WebAssembly past 80 decode steps, matching PyTorch and Node', async () => {
    const { page, problems } = await open('/demos/reference-model?backend=gpujs-webasm');
    await page.locator('[data-testid="model-check"]').waitFor({ timeout: 300_000 });
    expect(await page.locator('[data-testid="backend"]').getAttribute('data-backend')).toBe('gpujs-webasm');
    summary.modelWebasmLogitsMaxAbsDiff = await expectLogitsMatch(page);
    // 160 decode steps with a growing cache: gpu.js alone kept a WebAssembly.Memory per kernel
    // and size signature and Chromium refused new ones after ~80; tensor-core bounds them
    summary.modelWebasmGreedyText = await expectGreedyAsNode(page, readFileSync(join(CHECKPOINTS, 'DEFAULT'), 'utf8').trim(), 'The ', 160);
    const modules = page.locator('[data-testid="model-wasm-modules"]');
    const count = async (attribute: string): Promise<number> => Number(await modules.getAttribute(attribute));
    const [live, assembled, limit] = [await count('data-live'), await count('data-assembled'), await count('data-limit')];
    expect(live).toBeLessThanOrEqual(limit);
    expect(assembled).toBeGreaterThan(limit); // more were made than kept: the bound released some
    summary.modelWebasmModules = { live, assembled, limit };
    expect(problems).toEqual([]);
    await page.close();
  }, 600_000);

  it('?backend=cpu picks the CPU backend', async () => {
    const { page, problems } = await open('/demos/attention-visualiser?backend=cpu');
    await page.locator('[data-testid="viz-check"]').waitFor({ timeout: 120_000 });
    expect(await page.locator('[data-testid="backend"]').getAttribute('data-backend')).toBe('cpu');
    expect(problems).toEqual([]);
    await page.close();
  }, 180_000);

  it('the concepts page tables: spec §5 and the published models', async () => {
    const { page, problems } = await open('/concepts/kv-cache');
    expectSpecRows(normalise(await tableRows(page, '[data-testid="preset-kv-table"] tbody tr')));
    const models = await page.$$eval('[data-testid="model-kv-table"] tbody tr', (rows) =>
      rows.map((r) => [r.getAttribute('data-model'), ...Array.from(r.querySelectorAll('[data-col]')).map((c) => c.textContent ?? '')]),
    );
    const byModel = new Map(models.map(([id, ...cells]) => [id, cells.map(text)]));
    expect(byModel.get('deepseek-v3')).toEqual(['576', '68.6 KiB', '8.58 GiB']);
    expect(byModel.get('deepseek-v3.2-exp')).toEqual(['704', '83.9 KiB', '10.5 GiB']);
    expect(byModel.get('llama-3-70b')).toEqual(['2 048', '320 KiB', '40 GiB']);
    expect(byModel.get('llama-3-8b')).toEqual(['2 048', '128 KiB', '16 GiB']);
    expect(byModel.get('qwen2.5-72b')).toEqual(['2 048', '320 KiB', '40 GiB']);
    expect(byModel.get('mistral-7b')).toEqual(['2 048', '128 KiB', '512 MiB']);
    expect(text(await page.locator('[data-model="mistral-7b"] [data-testid="window-note"]').textContent())).toBe('sliding window: holds 4 096 tokens');
    expect(byModel.get('deepseek-v2-lite')).toEqual(['576', '30.4 KiB', '3.8 GiB']);
    expect(byModel.size).toBe(13);
    expect(problems).toEqual([]);
    await page.close();
  }, 120_000);
});
