// Test support: the expected logits the training code (checkpoints/) and transformers
// (fixtures/hf/) wrote beside each checkpoint, and a helper that runs a prompt through the model.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FormatError } from '@attnkit/tensor-core';
import { entryValues, parseSafetensors } from '../io/safetensors.js';

export interface ExpectedLogits {
  readonly inputIds: number[];
  /** [S, vocab] row-major. */
  readonly logits: Float32Array;
  readonly vocab: number;
  /** Max abs error allowed: the file's own tolerance (never wider than 1e-3). */
  readonly tolerance: number;
}

export async function readExpectedLogits(dir: string): Promise<ExpectedLogits> {
  const file = parseSafetensors(new Uint8Array(await readFile(join(dir, 'expected_logits.safetensors'))), 'expected_logits.safetensors');
  const ids = file.tensors.get('input_ids');
  const logits = file.tensors.get('logits');
  if (!ids || ids.dtype !== 'I32' || !logits) throw new FormatError({ fn: 'readExpectedLogits', expected: 'input_ids I32 and logits F32', got: [...file.tensors.keys()].join(', ') });
  const aligned = new Uint8Array(ids.bytes);
  const inputIds = Array.from(new Int32Array(aligned.buffer));
  const values = entryValues(logits);
  if (values.dtype !== 'f32') throw new FormatError({ fn: 'readExpectedLogits', expected: 'logits F32', got: logits.dtype });
  const json: unknown = JSON.parse(await readFile(join(dir, 'expected_logits.json'), 'utf8'));
  const recorded: unknown = typeof json === 'object' && json !== null ? Reflect.get(json, 'tolerance') : undefined;
  const maxAbs: unknown = typeof recorded === 'object' && recorded !== null ? Reflect.get(recorded, 'max_abs_error') : undefined;
  const tolerance = Math.min(1e-3, typeof maxAbs === 'number' ? maxAbs : 1e-3);
  return { inputIds, logits: values.data, vocab: logits.shape[1] ?? 0, tolerance };
}

/** max |a − b| and where. */
export function maxAbsError(actual: ArrayLike<number>, expected: ArrayLike<number>): { error: number; at: number } {
  let error = 0;
  let at = -1;
  if (actual.length !== expected.length) return { error: Infinity, at: -1 };
  for (let i = 0; i < actual.length; i++) {
    const e = Math.abs((actual[i] ?? NaN) - (expected[i] ?? NaN));
    if (!(e <= error)) {
      error = e;
      at = i;
    }
  }
  return { error, at };
}
