#!/usr/bin/env -S npx tsx
// pnpm golden [DIR] [--backend NAME,...] [--case PATTERN]
// Runs every case of a golden folder (default: ../shared/golden) on every available backend,
// prints one line per case and backend, and ends with "N passed, M failed[, K skipped]".
// Exit code 1 if any case failed.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { defaultGoldenDir, loadGoldenCases } from '@attnkit/testkit';
import { formatResult, runGolden, summaryLine } from './runner.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    backend: { type: 'string' },
    case: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});

if (values.help) {
  console.log(`usage: pnpm golden [DIR] [--backend cpu,gpujs-webasm,...] [--case REGEX]

Runs the golden cases in DIR (default ${defaultGoldenDir()}) on every backend available here.
Prints one line per case and backend and a closing "N passed, M failed[, K skipped]" line.`);
  process.exit(0);
}

if (values.backend) process.env.ATTNKIT_BACKENDS = values.backend;
// pnpm runs scripts from the repository root; INIT_CWD is where the user typed the command.
const dir = positionals[0] ? resolve(process.env.INIT_CWD ?? process.cwd(), positionals[0]) : defaultGoldenDir();
const pattern = values.case ? new RegExp(values.case) : null;
const cases = loadGoldenCases(dir).filter((c) => !pattern || pattern.test(c.name));
const { available, skipped } = await availableBackends();

console.log(`golden folder: ${dir} (${cases.length} cases)`);
console.log(`backends: ${available.map((b) => b.name).join(', ') || 'none'}`);
for (const s of skipped) console.log(`  not available: ${s.name} (${s.reason})`);

const results = await runGolden({ cases, backends: available, onResult: (r) => console.log(formatResult(r)) });
console.log(summaryLine(results));
process.exitCode = results.some((r) => r.status === 'fail') ? 1 : 0;
