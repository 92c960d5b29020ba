// Benchmark records: collected per run, written to bench-results/<suite>-<time>.json with the
// machine and versions, and printed as a table with each figure's ratio to the peers measured
// in the same run.
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchRecord {
  /** What was measured, e.g. `matmul 1024x1024x1024`. */
  readonly name: string;
  /** Who computed it: `attnkit`, or a peer library. */
  readonly implementation: string;
  /** Where: `gpujs-webgpu`, `cpu`, `wasm`, … */
  readonly backend: string;
  /** `throughput`, `time`, … */
  readonly metric: string;
  readonly value: number;
  /** `GFLOP/s`, `ms`, … */
  readonly unit: string;
}

export interface BenchRunOptions {
  /** Implementations that are peers: every other figure gets a ratio column per peer. */
  readonly peers: readonly string[];
  /** Package versions to record beside the figures. */
  readonly versions?: Readonly<Record<string, string>>;
  /** Folder for the JSON file (default: bench-results/ at the repository root, or $ATTNKIT_BENCH_DIR). */
  readonly outDir?: string;
}

export class BenchRun {
  readonly suite: string;
  readonly records: BenchRecord[] = [];
  readonly #options: BenchRunOptions;
  /** 1-minute load average when the run started: other processes competing for the cores. */
  readonly #loadAtStart = loadavg()[0] ?? 0;

  constructor(suite: string, options: BenchRunOptions) {
    this.suite = suite;
    this.#options = options;
  }

  record(record: BenchRecord): void {
    this.records.push(record);
  }

  /** The records as a table: one block per name and metric, a ratio column per peer. */
  table(): string {
    const lines: string[] = [];
    const groups = new Map<string, BenchRecord[]>();
    for (const r of this.records) {
      const key = `${r.name} — ${r.metric} (${r.unit})`;
      groups.set(key, [...(groups.get(key) ?? []), r]);
    }
    for (const [title, rows] of groups) {
      const peers = this.#options.peers.filter((p) => rows.some((r) => r.implementation === p));
      const header = ['implementation', 'backend', 'value', ...peers.map((p) => `× ${p}`)];
      const body = rows.map((r) => [
        r.implementation,
        r.backend,
        formatValue(r.value),
        ...peers.map((p) => {
          const peer = rows.find((q) => q.implementation === p);
          if (!peer || peer === r) return r.implementation === p ? '1' : '';
          // higher is better for throughput, lower for time: ratios read "times as good"
          const ratio = r.unit === 'ms' ? peer.value / r.value : r.value / peer.value;
          return ratio.toFixed(ratio < 0.1 ? 3 : 2);
        }),
      ]);
      const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
      const fmt = (row: string[]): string => `| ${row.map((c, i) => (i >= 2 ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0))).join(' | ')} |`;
      lines.push(`${title}`, fmt(header), `|${widths.map((w, i) => (i >= 2 ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`, ...body.map(fmt), '');
    }
    return lines.join('\n');
  }

  /** Writes the JSON file and returns its path. */
  write(): string {
    const dir = resolve(this.#options.outDir ?? process.env.ATTNKIT_BENCH_DIR ?? join(repositoryRoot(), 'bench-results'));
    mkdirSync(dir, { recursive: true });
    const when = new Date();
    const file = join(dir, `${this.suite}-${when.toISOString().replace(/[:.]/g, '-')}.json`);
    const cpu = cpus()[0];
    const body = {
      suite: this.suite,
      date: when.toISOString(),
      machine: {
        cpus: cpus().length,
        cpuModel: cpu?.model ?? 'unknown',
        memoryGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
        platform: `${process.platform}-${process.arch}`,
        node: process.version,
        loadAverage1m: { start: this.#loadAtStart, end: loadavg()[0] ?? 0 },
      },
      versions: this.#options.versions ?? {},
      records: this.records,
    };
    writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`);
    return file;
  }
}

function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 1) return v.toFixed(2);
  return v.toPrecision(3);
}

/** The repository root: this file is tooling/bench/src/report.ts. */
function repositoryRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
}
