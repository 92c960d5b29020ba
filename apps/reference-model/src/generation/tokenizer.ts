// Byte-level tokenizer: token ids are the UTF-8 bytes of the text (vocabulary 256). The tiny
// checkpoints are trained on bytes, so any text round-trips and no vocabulary file is needed.

export interface Tokenizer {
  readonly vocabSize: number;
  encode(text: string): number[];
  /** Decodes ids; a trailing incomplete UTF-8 sequence is held back until more bytes arrive. */
  decode(ids: readonly number[]): string;
}

export class ByteTokenizer implements Tokenizer {
  readonly vocabSize = 256;

  encode(text: string): number[] {
    return Array.from(new TextEncoder().encode(text));
  }

  decode(ids: readonly number[]): string {
    return new TextDecoder('utf-8').decode(Uint8Array.from(ids.filter((id) => id >= 0 && id < 256)));
  }
}

/**
 * Streams text from token ids one at a time without splitting a multi-byte character: each
 * `push` returns the text that became complete.
 */
export class Utf8Stream {
  readonly #decoder = new TextDecoder('utf-8');

  push(id: number): string {
    return this.#decoder.decode(Uint8Array.of(id & 0xff), { stream: true });
  }

  flush(): string {
    return this.#decoder.decode();
  }
}
