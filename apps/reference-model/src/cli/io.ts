// Where the CLI writes: the process's streams, or buffers in tests.

export interface CliIO {
  /** Generated text and tables. */
  out(text: string): void;
  /** Progress, summaries, errors. */
  err(text: string): void;
  /** stderr is a terminal: progress is a live `\r` line instead of a final summary. */
  readonly isTTY: boolean;
  /** stdout is that same terminal too: text and progress share the screen. */
  readonly sharedTerminal: boolean;
}

export const processIO: CliIO = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  isTTY: process.stderr.isTTY === true,
  sharedTerminal: process.stderr.isTTY === true && process.stdout.isTTY === true,
};

/** Byte counts as the CLI prints them (1 KiB = 1024 B). */
export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 ** 2).toFixed(2)} MiB`;
}
