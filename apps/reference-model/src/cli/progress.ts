// The live progress line of `generate`. On a terminal it is redrawn in place after each token:
// under the text being streamed when stdout is the same terminal (the unfinished text line is
// redrawn with the status after it), or alone on stderr when stdout goes elsewhere. Off a
// terminal nothing is drawn; the caller prints a summary at the end.

import type { CliIO } from './io.js';

const CLEAR_LINE = '\r\x1b[K';
const DIM = '\x1b[2m';
const RESET = '\x1b[0m';

export class ProgressLine {
  readonly #io: CliIO;
  #partial = '';
  #status = '';

  constructor(io: CliIO) {
    this.#io = io;
  }

  /** Streams generated text to stdout. */
  text(piece: string): void {
    if (!this.#io.sharedTerminal) {
      this.#io.out(piece);
      return;
    }
    const lines = (this.#partial + piece).split('\n');
    this.#partial = lines.pop() ?? '';
    if (lines.length > 0) this.#io.out(`${CLEAR_LINE}${lines.join('\n')}\n`);
    this.#draw();
  }

  status(line: string): void {
    if (!this.#io.isTTY) return;
    this.#status = line;
    this.#draw();
  }

  /** Removes the status and leaves the cursor after the text. */
  finish(): void {
    if (this.#io.sharedTerminal) this.#io.out(`${CLEAR_LINE}${this.#partial}\n`);
    else if (this.#io.isTTY) this.#io.err(CLEAR_LINE);
    else this.#io.out('\n');
    this.#partial = '';
    this.#status = '';
  }

  #draw(): void {
    if (this.#io.sharedTerminal) this.#io.out(`${CLEAR_LINE}${this.#partial}${this.#status ? `  ${DIM}${this.#status}${RESET}` : ''}`);
    else if (this.#io.isTTY) this.#io.err(`${CLEAR_LINE}${this.#status}`);
  }
}
