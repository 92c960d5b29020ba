// Fetching a published checkpoint into the in-memory map the reference model's browser-safe
// loader takes (file name → bytes), and checking the loaded model against the logits PyTorch
// computed for it (expected_logits.*, written beside the weights at training time).

import { type Model, parseSafetensors } from '@attnkit/reference-model';
import { FormatError } from '@attnkit/tensor-core';

/** What the site publishes (see .vitepress/checkpoints.ts): checkpoint names, file sizes, the default. */
export interface CheckpointListing {
  readonly defaultName: string;
  readonly checkpoints: readonly { readonly name: string; readonly modelType: string; readonly files: Readonly<Record<string, number>> }[];
}

/** The files the loader reads: the config and the weights. */
export const MODEL_FILES = ['config.json', 'model.safetensors'] as const;

export interface ExpectedLogits {
  readonly inputIds: number[];
  /** [S, vocab], row-major. */
  readonly logits: Float32Array;
  /** The largest |Δ| the checkpoint's own record allows (never above 1e-3). */
  readonly tolerance: number;
}

/** Fetches `files` of checkpoint `name` under `base`, reporting bytes received so far. */
export async function fetchFiles(base: string, name: string, files: readonly string[], onBytes?: (received: number) => void): Promise<Map<string, Uint8Array>> {
  let received = 0;
  const out = new Map<string, Uint8Array>();
  for (const file of files) {
    const url = `${base}checkpoints/${name}/${file}`;
    const response = await fetch(url);
    if (!response.ok || !response.body) throw new FormatError({ fn: 'fetchFiles', expected: `${url} (HTTP 200)`, got: `HTTP ${response.status}` });
    const chunks: Uint8Array[] = [];
    const reader = response.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.byteLength;
      onBytes?.(received);
    }
    const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
    let at = 0;
    for (const c of chunks) {
      bytes.set(c, at);
      at += c.byteLength;
    }
    out.set(file, bytes);
  }
  return out;
}

/** Reads expected_logits.safetensors (input_ids I32 [S], logits F32 [S, vocab]) and its JSON record's tolerance. */
export function parseExpected(safetensors: Uint8Array, json: Uint8Array): ExpectedLogits {
  const fn = 'parseExpected';
  const file = parseSafetensors(safetensors, 'expected_logits.safetensors');
  const ids = file.tensors.get('input_ids');
  const logits = file.tensors.get('logits');
  if (!ids || ids.dtype !== 'I32' || !logits || logits.dtype !== 'F32') {
    throw new FormatError({ fn, expected: 'input_ids I32 and logits F32', got: [...file.tensors.keys()].join(', ') });
  }
  // copies: the entries are views at arbitrary byte offsets, typed arrays need aligned ones
  const inputIds = Array.from(new Int32Array(new Uint8Array(ids.bytes).buffer));
  const values = new Float32Array(new Uint8Array(logits.bytes).buffer);
  const record: unknown = JSON.parse(new TextDecoder().decode(json));
  const tolerance: unknown = typeof record === 'object' && record !== null ? Reflect.get(record, 'tolerance') : undefined;
  const maxAbs: unknown = typeof tolerance === 'object' && tolerance !== null ? Reflect.get(tolerance, 'max_abs_error') : undefined;
  return { inputIds, logits: values, tolerance: Math.min(1e-3, typeof maxAbs === 'number' ? maxAbs : 1e-3) };
}

/** Runs the expected prompt through the model (one prefill, every position) and compares the logits. */
export async function checkLogits(model: Model, expected: ExpectedLogits): Promise<{ maxAbsDiff: number; positions: number }> {
  using cache = model.createCache({ maxTokens: expected.inputIds.length });
  using logits = await model.forward([expected.inputIds], cache); // [1, S, vocab]
  const actual = await logits.data();
  if (actual.length !== expected.logits.length) return { maxAbsDiff: Infinity, positions: expected.inputIds.length };
  let maxAbsDiff = 0;
  for (let i = 0; i < actual.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs((actual[i] as number) - (expected.logits[i] as number)));
  return { maxAbsDiff, positions: expected.inputIds.length };
}
