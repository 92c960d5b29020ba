// The benches' command line: one small parser over node:util's parseArgs, so every bench takes
// its flags the same way. `pnpm bench -- --flag` hands the script a literal `--` first, which
// parseArgs would read as "positionals follow" (and refuse): it is dropped. `--help` prints the
// flags with their defaults and exits; an unknown flag is an error that shows the same text.
import { parseArgs } from 'node:util';

export interface BenchFlag {
  readonly type: 'string' | 'boolean';
  /** A string flag's default (shown in --help); a boolean flag is false unless given. */
  readonly default?: string;
  /** One line for --help. */
  readonly help: string;
}

/** A bench's parsed flags, read by name with the conversion each needs. */
export interface BenchArgs<K extends string> {
  /** The flag's value, or its default; undefined when neither exists. */
  string(name: K): string | undefined;
  /** Whether the boolean flag was given. */
  flag(name: K): boolean;
  /** A comma-separated list of positive integers (`--contexts 1024,4096`); `''` is the empty list (none of that kind); null when absent. */
  integers(name: K): number[] | null;
  /** A positive number; null when absent. */
  positive(name: K): number | null;
  /** A positive integer; null when absent. */
  positiveInteger(name: K): number | null;
  /** An integer ≥ 0; null when absent. */
  count(name: K): number | null;
}

/**
 * Parses `argv` (default: this process's arguments) against `flags`. `command` heads the --help
 * text, e.g. `pnpm --filter @attnkit/attention-mla bench --`.
 */
export function benchArgs<K extends string>(command: string, flags: Readonly<Record<K, BenchFlag>>, argv: readonly string[] = process.argv.slice(2)): BenchArgs<K> {
  const names = Object.keys(flags).filter((n): n is K => n in flags);
  const args = argv[0] === '--' ? argv.slice(1) : [...argv];
  if (args.includes('--help') || args.includes('-h')) {
    console.log(usage(command, names, flags));
    process.exit(0);
  }
  const options: Record<string, { type: 'string' | 'boolean' }> = {};
  for (const name of names) options[name] = { type: flags[name].type };
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    throw new Error(`[bench] ${message}\n\n${usage(command, names, flags)}`, { cause: error });
  }
  const text = (name: K): string | undefined => {
    const value = values[name];
    return typeof value === 'string' ? value : flags[name].default;
  };
  const refuse = (name: K, expected: string, got: string): never => {
    throw new Error(`[bench] --${name} expected ${expected}, got "${got}"`);
  };
  return {
    string: text,
    flag: (name) => values[name] === true,
    integers: (name) => {
      const value = text(name);
      if (value === undefined) return null;
      if (value.trim() === '') return []; // `--decode-t ''`: measure none
      const list = value.split(',').filter((s) => s.length > 0).map(Number);
      if (list.length === 0 || list.some((n) => !Number.isInteger(n) || n < 1)) refuse(name, 'comma-separated positive integers', value);
      return list;
    },
    positive: (name) => {
      const value = text(name);
      if (value === undefined) return null;
      const n = Number(value);
      if (!(n > 0) || !Number.isFinite(n)) refuse(name, 'a positive number', value);
      return n;
    },
    positiveInteger: (name) => {
      const value = text(name);
      if (value === undefined) return null;
      const n = Number(value);
      if (!Number.isInteger(n) || n < 1) refuse(name, 'a positive integer', value);
      return n;
    },
    count: (name) => {
      const value = text(name);
      if (value === undefined) return null;
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) refuse(name, 'an integer ≥ 0', value);
      return n;
    },
  };
}

function usage<K extends string>(command: string, names: readonly K[], flags: Readonly<Record<K, BenchFlag>>): string {
  const lines = names.map((name) => {
    const flag = flags[name];
    const left = flag.type === 'string' ? `--${name} <value>` : `--${name}`;
    const fallback = flag.default !== undefined ? ` (default: ${flag.default})` : '';
    return `  ${left.padEnd(24)} ${flag.help}${fallback}`;
  });
  return [`usage: ${command} [flags]`, '', ...lines, `  ${'--help'.padEnd(24)} this text`].join('\n');
}
