// The CLI's commands run in-process on tiny configurations (the HF fixtures, a few tokens) and
// on the embedded default; their output is checked, the SVG of `compare` parsed.

import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './main.js';
import type { CliIO } from './io.js';

const FIXTURES = join(import.meta.dirname, '../../fixtures/hf');

function capture(tty = false): CliIO & { stdout: () => string; stderr: () => string } {
  let out = '';
  let err = '';
  return {
    out: (t) => void (out += t),
    err: (t) => void (err += t),
    isTTY: tty,
    sharedTerminal: tty,
    stdout: () => out,
    stderr: () => err,
  };
}

describe('attnkit-demo CLI', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'attnkit-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('documents every command', async () => {
    for (const argv of [['help'], ['--help'], ['--', 'generate', '--help'], ['demo', '--help'], ['generate', '--help'], ['compare', '-h'], ['help', 'compare']]) {
      const io = capture();
      expect(await runCli(argv, io)).toBe(0);
      expect(io.stdout()).toMatch(/^Usage: attnkit-demo/);
    }
    const io = capture();
    await runCli(['generate', '--help'], io);
    for (const flag of ['--model', '--prompt', '--max-tokens', '--temperature', '--top-k', '--top-p', '--seed', '--backend']) expect(io.stdout()).toContain(flag);
  });

  it('reports usage errors (exit 2) and attnkit errors (exit 1) in one line', async () => {
    let io = capture();
    expect(await runCli(['frobnicate'], io)).toBe(2);
    expect(io.stderr()).toContain('unknown command "frobnicate"');
    io = capture();
    expect(await runCli(['generate', '--max-tokens', 'many'], io)).toBe(2);
    expect(io.stderr()).toContain('--max-tokens expects a number');
    io = capture();
    expect(await runCli(['generate', '--no-such-flag'], io)).toBe(2);
    io = capture();
    expect(await runCli(['generate', '--model', join(dir, 'missing')], io)).toBe(1);
    expect(io.stderr()).toMatch(/^FormatError: \[readCheckpointFolder\] expected a checkpoint folder/);
    io = capture();
    expect(await runCli(['generate', '--model', join(FIXTURES, 'llama-gqa'), '--backend', 'tpu'], io)).toBe(1);
    expect(io.stderr()).toContain('ConfigError: [--backend] expected cpu, gpujs-cpu, gpujs-webasm, gpujs-webgpu, auto, got tpu');
  });

  it('generate streams tokens and prints a summary off a terminal', async () => {
    const io = capture();
    const argv = ['generate', '--model', join(FIXTURES, 'deepseek-v32-dsa'), '--prompt', 'The quick', '--max-tokens', '12', '--temperature', '0'];
    expect(await runCli(argv, io)).toBe(0);
    expect(io.stdout().startsWith('The quick')).toBe(true);
    expect(io.stderr()).toMatch(/deepseek-v32-dsa: deepseek_v32 \/ dsa, 2 layers × 32/);
    expect(io.stderr()).toMatch(/12 tokens · prefill 9 tokens in [\d.]+ ms · decode [\d.]+ tok\/s · KV cache [\d.]+ KiB held \(\d+ B per token\)/);
    expect(io.stderr()).not.toContain('\r');
  });

  it('generate draws a live progress line on a terminal', async () => {
    const io = capture(true);
    expect(await runCli(['generate', '--model', join(FIXTURES, 'llama-gqa'), '--prompt', 'ab', '--max-tokens', '5', '--seed', '3'], io)).toBe(0);
    const CLEAR = '\r\u001b[K';
    expect(io.stdout()).toContain(CLEAR);
    expect(io.stdout()).toMatch(/\[5 tokens · [\d.]+ tok\/s · KV [\d.]+ KiB\]/);
  });

  it('demo prints readable text from the embedded default', async () => {
    const io = capture();
    expect(await runCli(['demo', '--max-tokens', '40', '--seed', '2'], io)).toBe(0);
    expect(io.stderr()).toMatch(/^fortunes-dsa: deepseek_v32 \/ dsa, 4 layers × 128/);
    const text = io.stdout();
    expect(text.startsWith('%\n')).toBe(true);
    expect([...text].every((ch) => /[\x20-\x7e\n\t]/.test(ch))).toBe(true);
  });

  it('compare writes a table and an SVG with one polyline per variant', async () => {
    const io = capture();
    const svg = join(dir, 'chart.svg');
    const models = ['llama-gqa', 'deepseek-v3-no-qlora', 'deepseek-v32-dsa'].map((m) => join(FIXTURES, m)).join(',');
    expect(await runCli(['compare', '--models', models, '--contexts', '8,16,24', '--decode-tokens', '2', '--repeats', '1', '--svg', svg], io)).toBe(0);
    const table = io.stdout().trim().split('\n');
    expect(table[0]).toMatch(/^\| model +\| attention \| context \| KV B\/token \| KV held \| prefill tok\/s \| decode tok\/s \| decode ms\/token \| decode CPU ms\/token \|$/);
    expect(table).toHaveLength(2 + 3 * 3);
    expect(table.find((l) => l.includes('deepseek-v32-dsa') && /\| +24 \|/.test(l))).toBeDefined();

    const text = await readFile(svg, 'utf8');
    expect(text.trimStart().startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(text.trimEnd().endsWith('</svg>')).toBe(true);
    const polylines = [...text.matchAll(/<polyline data-series="([^"]+)" points="([^"]+)"/g)];
    expect(polylines.map((m) => m[1])).toEqual(['llama-gqa (gqa)', 'deepseek-v3-no-qlora (mla)', 'deepseek-v32-dsa (dsa)']);
    for (const m of polylines) {
      const points = (m[2] ?? '').split(' ').map((p) => p.split(',').map(Number));
      expect(points).toHaveLength(3);
      expect(points.flat().every(Number.isFinite)).toBe(true);
      // x grows with the context length
      expect(points.map((p) => p[0])).toEqual([...points.map((p) => p[0] ?? 0)].sort((a, b) => a - b));
    }
    expect(text).toContain('context length (tokens)');
    expect(text).toContain('decode time per token (ms)');
    // every tag closed: a crude well-formedness check of what the writer emits
    const open = (text.match(/<(svg|text|title)\b/g) ?? []).length;
    const close = (text.match(/<\/(svg|text|title)>/g) ?? []).length;
    expect(open).toBe(close);
  });
});
