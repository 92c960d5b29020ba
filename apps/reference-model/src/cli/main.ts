// The CLI's commands behind one function, so tests run them without spawning a process.

import { AttnkitError } from '@attnkit/tensor-core';
import { COMPARE_HELP, compareCommand } from './compare.js';
import { DEMO_HELP, GENERATE_HELP, UsageError, generateCommand } from './generate.js';
import { type CliIO, processIO } from './io.js';

export const MAIN_HELP = `Usage: attnkit-demo <command> [options]

A small DeepSeek-style decoder built from the attnkit packages, with trained byte-level
checkpoints (one per attention variant: MHA, GQA, MLA, MLA+DSA, NSA) embedded.

Commands:
  demo       generate fortunes from the embedded default checkpoint (pnpm demo)
  generate   stream text from a checkpoint (--model, --prompt, sampling options, --backend)
  compare    every variant at several context lengths: KV bytes, prefill/decode speed, SVG chart
  help       this text; \`attnkit-demo <command> --help\` documents a command

Run from the repository root: pnpm demo, or pnpm --filter @attnkit/reference-model cli <command> …
`;

const HELP: Readonly<Record<string, string>> = { demo: DEMO_HELP, generate: GENERATE_HELP, compare: COMPARE_HELP };

/** Runs one CLI invocation; returns the exit code (0 ok, 1 error, 2 usage). */
export async function runCli(argv: readonly string[], io: CliIO = processIO): Promise<number> {
  // `pnpm … cli -- generate …` passes the separator through: skip it.
  const [command = 'help', ...rest] = argv[0] === '--' ? argv.slice(1) : argv;
  try {
    switch (command) {
      case 'demo':
        return await generateCommand(rest, io, 'demo');
      case 'generate':
        return await generateCommand(rest, io, 'generate');
      case 'compare':
        return await compareCommand(rest, io);
      case 'help':
      case '--help':
      case '-h':
        io.out(rest[0] !== undefined && HELP[rest[0]] ? (HELP[rest[0]] ?? MAIN_HELP) : MAIN_HELP);
        return 0;
      default:
        io.err(`unknown command "${command}"\n\n${MAIN_HELP}`);
        return 2;
    }
  } catch (error) {
    if (error instanceof UsageError || (error instanceof TypeError && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'))) {
      io.err(`${error.message}\n(see attnkit-demo ${command} --help)\n`);
      return 2;
    }
    if (AttnkitError.isInstance(error)) {
      io.err(`${error.name}: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

