// `compare`: one prompt through every attention variant at several context lengths. For each
// (variant, context L): prefill L tokens, then decode N tokens greedily, each step timed with its
// logits read back. Prints a table and writes an SVG of decode time per token against L.

import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ByteTokenizer } from '../generation/tokenizer.js';
import { argmax } from '../generation/sampling.js';
import type { Model } from '../model/model.js';
import { loadModelFromFolder } from '../node.js';
import { BACKEND_HELP, openBackend } from './backend.js';
import { lineChartSvg } from './chart.js';
import { UsageError, numberOption } from './generate.js';
import { type CliIO, formatBytes } from './io.js';
import { type ModelRef, allEmbedded, resolveModel } from './models.js';

export const COMPARE_HELP = `Usage: attnkit-demo compare [options]

Runs one prompt through every embedded checkpoint (one per attention variant) at several context
lengths: prefill L tokens, then decode N tokens greedily. Prints, per variant and L, the KV cache
bytes per token, prefill and decode tokens/s (wall clock; decode also in this process's CPU
time, which other processes' load hardly changes), and writes an SVG line chart of decode time per
token against context length (one line per variant).

Options:
  --models LIST      comma-separated checkpoint folders or embedded names (default: all embedded)
  --contexts LIST    context lengths L (default 32,64,128,256,480); lengths that do not fit a
                     model's max_position_embeddings with N decode steps are skipped
  --decode-tokens N  decode steps timed per context (default 32)
  --repeats R        runs per (variant, context); the table shows the medians (default 3)
  --prompt TEXT      text repeated to fill the context (default: a fixed English paragraph)
  --svg PATH         where the chart goes (default compare.svg)
  ${BACKEND_HELP}
  -h, --help         this text
`;

const DEFAULT_PROMPT =
  'It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. ' +
  'However little known the feelings or views of such a man may be on his first entering a neighbourhood, this truth is so well fixed in the minds of the surrounding families. ';

export interface CompareRow {
  readonly model: string;
  readonly attention: string;
  readonly context: number;
  readonly kvBytesPerToken: number;
  readonly kvBytesHeld: number;
  readonly prefillTokensPerSecond: number;
  readonly decodeMsPerToken: number;
  readonly decodeTokensPerSecond: number;
  /** Process CPU time per decoded token (on the cpu backend: the compute, whatever else runs on the machine). */
  readonly decodeCpuMsPerToken: number;
}

const OPTIONS = {
  models: { type: 'string' },
  contexts: { type: 'string' },
  'decode-tokens': { type: 'string' },
  repeats: { type: 'string' },
  prompt: { type: 'string' },
  svg: { type: 'string' },
  backend: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

function intList(raw: string, name: string): number[] {
  const list = raw.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) throw new UsageError(`--${name} expects positive integers separated by commas, got ${JSON.stringify(raw)}`);
  return list;
}

interface Measurement {
  readonly prefillMs: number;
  readonly decodeMs: number;
  /** CPU time this process spent in the decode steps: robust to other processes' load (the CPU backend runs on this thread). */
  readonly decodeCpuMs: number;
  readonly kvBytesHeld: number;
}

function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/** Prefill `context` tokens and decode `steps` more; times in ms. */
async function measure(model: Model, ids: readonly number[], steps: number): Promise<Measurement> {
  using cache = model.createCache({ maxTokens: ids.length + steps });
  let t = performance.now();
  let next: number;
  {
    using logits = await model.forward([ids], cache, { lastOnly: true });
    next = argmax(await logits.data());
  }
  const prefillMs = performance.now() - t;
  t = performance.now();
  const cpu = cpuMs();
  for (let i = 0; i < steps; i++) {
    using logits = await model.forward([[next]], cache, { lastOnly: true });
    next = argmax(await logits.data());
  }
  return { prefillMs, decodeMs: performance.now() - t, decodeCpuMs: cpuMs() - cpu, kvBytesHeld: cache.nbytes };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? NaN) + (sorted[mid] ?? NaN)) / 2;
}

export interface ComparisonSettings {
  readonly backend: string;
  readonly contexts: readonly number[];
  /** Decode steps timed per run. */
  readonly steps: number;
  /** Runs per (variant, context); medians are reported. */
  readonly repeats: number;
  readonly prompt: string;
}

/**
 * Every model is loaded once; then each repeat runs every (context, model) pair in turn, so a
 * change in the machine's load during the run touches every variant alike (the figures are the
 * medians over repeats).
 */
export async function runComparison(refs: readonly ModelRef[], settings: ComparisonSettings, io: CliIO): Promise<CompareRow[]> {
  const { contexts, steps, repeats, prompt } = settings;
  const bytes = new ByteTokenizer().encode(prompt);
  if (bytes.length === 0) throw new UsageError('--prompt must not be empty');
  const { backend, note } = await openBackend(settings.backend);
  io.err(`backend ${note}; ${steps} decode steps per context, median of ${repeats} interleaved runs\n`);
  const models: { ref: ModelRef; model: Model; contexts: number[] }[] = [];
  try {
    for (const ref of refs) {
      const model = await loadModelFromFolder(backend, ref.dir);
      const fitting = contexts.filter((L) => L + steps <= model.config.maxPositions);
      models.push({ ref, model, contexts: fitting });
      const skipped = contexts.filter((L) => !fitting.includes(L));
      if (skipped.length > 0) io.err(`${ref.name}: skipping contexts ${skipped.join(', ')} (max_position_embeddings ${model.config.maxPositions})\n`);
      await measure(model, bytes.slice(0, Math.min(8, model.config.maxPositions - 2)), 1); // warm-up: kernels compiled, caches of the backend primed
    }
    const runs = new Map<string, Measurement[]>();
    for (let r = 0; r < repeats; r++) {
      for (const L of contexts) {
        const ids = Array.from({ length: L }, (_, i) => bytes[i % bytes.length] ?? 32);
        for (const { ref, model, contexts: fitting } of models) {
          if (!fitting.includes(L)) continue;
          const key = `${ref.name}@${L}`;
          runs.set(key, [...(runs.get(key) ?? []), await measure(model, ids, steps)]);
        }
      }
      io.err(`  run ${r + 1}/${repeats} done\n`);
    }
    const rows: CompareRow[] = [];
    for (const { ref, model, contexts: fitting } of models) {
      for (const L of fitting) {
        const list = runs.get(`${ref.name}@${L}`) ?? [];
        const prefillMs = median(list.map((x) => x.prefillMs));
        const decodeMs = median(list.map((x) => x.decodeMs));
        rows.push({
          model: ref.name,
          attention: model.config.attention,
          context: L,
          kvBytesPerToken: model.kvBytesPerToken,
          kvBytesHeld: list[0]?.kvBytesHeld ?? 0,
          prefillTokensPerSecond: (L / prefillMs) * 1000,
          decodeMsPerToken: decodeMs / steps,
          decodeTokensPerSecond: (steps / decodeMs) * 1000,
          decodeCpuMsPerToken: median(list.map((x) => x.decodeCpuMs)) / steps,
        });
      }
    }
    return rows;
  } finally {
    for (const { model } of models) model.dispose();
    await backend.dispose();
  }
}

export function formatTable(rows: readonly CompareRow[]): string {
  const header = ['model', 'attention', 'context', 'KV B/token', 'KV held', 'prefill tok/s', 'decode tok/s', 'decode ms/token', 'decode CPU ms/token'];
  const body = rows.map((r) => [
    r.model,
    r.attention,
    String(r.context),
    String(Math.round(r.kvBytesPerToken)),
    formatBytes(r.kvBytesHeld),
    r.prefillTokensPerSecond.toFixed(0),
    r.decodeTokensPerSecond.toFixed(1),
    r.decodeMsPerToken.toFixed(2),
    r.decodeCpuMsPerToken.toFixed(2),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => (i < 2 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i < 2 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return `${[line(header), rule, ...body.map(line)].join('\n')}\n`;
}

export function comparisonSvg(rows: readonly CompareRow[], backendName: string): string {
  const names = [...new Set(rows.map((r) => r.model))];
  const series = names.map((name) => ({
    name: `${name} (${rows.find((r) => r.model === name)?.attention ?? '?'})`,
    points: rows.filter((r) => r.model === name).map((r) => [r.context, r.decodeMsPerToken] as const),
  }));
  return lineChartSvg(series, { title: `Decode time per token vs context length (${backendName})`, xLabel: 'context length (tokens)', yLabel: 'decode time per token (ms)' });
}

export async function compareCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false });
  if (values.help) {
    io.out(COMPARE_HELP);
    return 0;
  }
  const refs = values.models === undefined ? await allEmbedded() : await Promise.all(values.models.split(',').map((m) => resolveModel(m.trim())));
  const contexts = intList(values.contexts ?? '32,64,128,256,480', 'contexts');
  const steps = numberOption(values, 'decode-tokens', 32);
  const repeats = numberOption(values, 'repeats', 3);
  for (const [name, n] of [['decode-tokens', steps], ['repeats', repeats]] as const) {
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} expects a positive integer, got ${n}`);
  }
  const backendName = values.backend ?? 'cpu';
  const rows = await runComparison(refs, { backend: backendName, contexts, steps, repeats, prompt: values.prompt ?? DEFAULT_PROMPT }, io);
  io.out(formatTable(rows));
  const svgPath = values.svg ?? 'compare.svg';
  await writeFile(svgPath, comparisonSvg(rows, backendName));
  io.err(`chart written to ${svgPath}\n`);
  return 0;
}
