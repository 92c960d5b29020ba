// Autoregressive generation: prefill the prompt in one call, then decode one token per call,
// sampling each from the last logits. Every token is reported as it is produced; an
// AbortSignal stops the loop between (and inside) model calls, and the cache and every tensor
// are released before the AbortedError reaches the caller.

import { CapacityError, ConfigError, throwIfAborted } from '@attnkit/tensor-core';
import type { Model } from '../model/model.js';
import { yieldToEventLoop } from '../util/yield.js';
import { Rng, type SamplingOptions, sample, validateSampling } from './sampling.js';
import { ByteTokenizer, type Tokenizer, Utf8Stream } from './tokenizer.js';

export interface GenerateOptions extends SamplingOptions {
  /** Tokens to generate (the prompt not counted). Default 128. */
  readonly maxTokens?: number;
  /** Stop after sampling one of these ids (it is reported and kept). Default none. */
  readonly stopTokens?: readonly number[];
  readonly signal?: AbortSignal;
  /** Called once per generated token, in order; generation waits for a returned promise. */
  readonly onToken?: (event: TokenEvent) => void | Promise<void>;
  /** Tokenizer for a string prompt and the streamed text (default: bytes, as the tiny checkpoints). */
  readonly tokenizer?: Tokenizer;
}

export interface TokenEvent {
  readonly id: number;
  /** 0 for the first generated token. */
  readonly index: number;
  /** Text this token completed (empty inside a multi-byte character). */
  readonly text: string;
  /** Since generation started (prefill included). */
  readonly elapsedMs: number;
  /** Decode rate so far (tokens after the first / decode time); 0 at the first token. */
  readonly decodeTokensPerSecond: number;
  /** Bytes the KV cache holds now (allocated capacity, all layers). */
  readonly kvBytes: number;
}

export interface GenerationResult {
  readonly promptTokens: number;
  readonly tokens: readonly number[];
  readonly text: string;
  readonly stopReason: 'length' | 'stop-token';
  /** Prompt forward pass and the first token's readback. */
  readonly prefillMs: number;
  readonly prefillTokensPerSecond: number;
  /** The decode steps (one model call and readback per token after the first). */
  readonly decodeMs: number;
  readonly decodeTokensPerSecond: number;
  /** KV cache bytes held at the end (allocated), and the per-token figure of the model's layout. */
  readonly kvBytes: number;
  readonly kvBytesPerToken: number;
}

export async function generate(model: Model, prompt: string | readonly number[], options: GenerateOptions = {}): Promise<GenerationResult> {
  const fn = 'generate';
  validateSampling(options);
  const tokenizer = options.tokenizer ?? new ByteTokenizer();
  const ids = typeof prompt === 'string' ? tokenizer.encode(prompt) : [...prompt];
  const maxTokens = options.maxTokens ?? 128;
  if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new ConfigError({ fn, expected: 'maxTokens a positive integer', got: String(maxTokens) });
  if (ids.length === 0) throw new ConfigError({ fn, expected: 'a prompt of at least one token', got: 'an empty prompt' });
  const limit = model.config.maxPositions;
  if (ids.length + maxTokens - 1 > limit) {
    throw new CapacityError({ fn, expected: `prompt + maxTokens − 1 ≤ ${limit} (max_position_embeddings)`, got: `${ids.length} + ${maxTokens} − 1` });
  }
  const { signal } = options;
  throwIfAborted(signal, fn);
  const stop = new Set(options.stopTokens ?? []);
  const rng = new Rng(options.seed ?? 0);
  const stream = new Utf8Stream();
  const generated: number[] = [];
  let text = '';
  let stopReason: GenerationResult['stopReason'] = 'length';

  const started = performance.now();
  let prefillMs = 0;
  let decodeMs = 0;
  using cache = model.createCache({ maxTokens: Math.max(1, ids.length + maxTokens - 1) });
  let input: readonly number[] = ids;
  for (let index = 0; index < maxTokens; index++) {
    const stepStart = performance.now();
    using logits = await model.forward([input], cache, { lastOnly: true, ...(signal ? { signal } : {}) }); // [1, 1, vocab]
    const row = await logits.data();
    const id = sample(row, options, rng);
    const now = performance.now();
    if (index === 0) prefillMs = now - stepStart;
    else decodeMs += now - stepStart;
    generated.push(id);
    const piece = stream.push(id);
    text += piece;
    const event: TokenEvent = {
      id,
      index,
      text: piece,
      elapsedMs: now - started,
      decodeTokensPerSecond: index === 0 ? 0 : (index / decodeMs) * 1000,
      kvBytes: cache.nbytes,
    };
    await options.onToken?.(event);
    await yieldToEventLoop(); // so a timer or a Ctrl-C handler can abort between tokens
    throwIfAborted(signal, fn);
    if (stop.has(id)) {
      stopReason = 'stop-token';
      break;
    }
    input = [id];
  }
  const tail = stream.flush();
  text += tail;
  const decodeSteps = generated.length - 1;
  return {
    promptTokens: ids.length,
    tokens: generated,
    text,
    stopReason,
    prefillMs,
    prefillTokensPerSecond: prefillMs > 0 ? (ids.length / prefillMs) * 1000 : 0,
    decodeMs,
    decodeTokensPerSecond: decodeSteps > 0 && decodeMs > 0 ? (decodeSteps / decodeMs) * 1000 : 0,
    kvBytes: cache.nbytes,
    kvBytesPerToken: model.kvBytesPerToken,
  };
}
