// A checkpoint as bytes: `config.json` plus one `model.safetensors`, or several shards named by
// `model.safetensors.index.json` (Hugging Face's sharding). Browser-safe: the files come in as
// a map of file name → bytes (`readCheckpointFolder` in ../node.ts fills it from a folder).
// Every tensor is checked against the shapes the config implies before anything is uploaded.

import { FormatError } from '@attnkit/tensor-core';
import { type SafetensorsEntry, parseSafetensors } from '../io/safetensors.js';
import { type ModelConfig, parseModelConfig } from './config.js';
import { expectedTensors, isIgnoredTensor } from './tensor-names.js';

/** File name (relative to the checkpoint folder) → contents. */
export type CheckpointFiles = ReadonlyMap<string, Uint8Array>;

export interface Checkpoint {
  readonly config: ModelConfig;
  /** Every weight by name, checked against the config (name, shape, dtype F32/F16/BF16). */
  readonly tensors: ReadonlyMap<string, SafetensorsEntry>;
}

const FN = 'readCheckpoint';
export const INDEX_FILE = 'model.safetensors.index.json';
export const SINGLE_FILE = 'model.safetensors';

function file(files: CheckpointFiles, name: string, why: string): Uint8Array {
  const bytes = files.get(name);
  if (!bytes) throw new FormatError({ fn: FN, expected: `a file ${name} (${why})`, got: `only ${[...files.keys()].sort().join(', ') || 'no files'}` });
  return bytes;
}

function parseJson(bytes: Uint8Array, name: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new FormatError({ fn: FN, expected: `${name}: valid UTF-8 JSON`, got: error instanceof Error ? error.message : String(error) });
  }
}

/** Which shard holds each tensor, from the index file (or the one file). */
function shardMap(files: CheckpointFiles): Map<string, string[]> {
  if (!files.has(INDEX_FILE)) {
    file(files, SINGLE_FILE, `the weights, or ${INDEX_FILE} naming shards`);
    return new Map([[SINGLE_FILE, []]]);
  }
  const index = parseJson(file(files, INDEX_FILE, 'the shard index'), INDEX_FILE);
  const weightMap: unknown = typeof index === 'object' && index !== null ? Reflect.get(index, 'weight_map') : undefined;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw new FormatError({ fn: FN, expected: `${INDEX_FILE}: a "weight_map" object (tensor name → shard file)`, got: JSON.stringify(weightMap) ?? 'none' });
  }
  const shards = new Map<string, string[]>();
  for (const [name, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string') throw new FormatError({ fn: FN, expected: `${INDEX_FILE}: a shard file name for "${name}"`, got: JSON.stringify(shard) });
    const list = shards.get(shard) ?? [];
    list.push(name);
    shards.set(shard, list);
  }
  return shards;
}

/** Parses and checks a checkpoint held in memory. Throws FormatError / ConfigError naming the file and tensor. */
export function readCheckpoint(files: CheckpointFiles): Checkpoint {
  const config = parseModelConfig(parseJson(file(files, 'config.json', 'the model configuration'), 'config.json'));
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [shard, listed] of shardMap(files)) {
    const parsed = parseSafetensors(file(files, shard, `a shard named by ${INDEX_FILE}`), shard);
    for (const [name, entry] of parsed.tensors) {
      if (tensors.has(name)) throw new FormatError({ fn: FN, expected: `tensor "${name}" in one file`, got: `it again in ${shard}` });
      tensors.set(name, entry);
    }
    for (const name of listed) {
      if (!parsed.tensors.has(name)) throw new FormatError({ fn: FN, expected: `tensor "${name}" in ${shard} (as ${INDEX_FILE} says)`, got: 'no such tensor there' });
    }
  }
  checkTensors(config, tensors);
  return { config, tensors };
}

/** Names, shapes and dtypes against what the config implies: missing, unexpected or misshapen tensors are FormatErrors. */
export function checkTensors(config: ModelConfig, tensors: ReadonlyMap<string, SafetensorsEntry>): void {
  const expected = expectedTensors(config);
  for (const [name, spec] of expected) {
    const entry = tensors.get(name);
    if (!entry) {
      if (spec.optional) continue;
      throw new FormatError({ fn: FN, expected: `tensor "${name}" [${spec.shape.join(', ')}] (${config.modelType}, ${config.attention})`, got: 'no such tensor in the checkpoint' });
    }
    if (entry.shape.length !== spec.shape.length || entry.shape.some((d, i) => d !== spec.shape[i])) {
      throw new FormatError({ fn: FN, expected: `tensor "${name}" of shape [${spec.shape.join(', ')}] (from config.json)`, got: `[${entry.shape.join(', ')}]` });
    }
    if (entry.dtype !== 'F32' && entry.dtype !== 'F16' && entry.dtype !== 'BF16') {
      throw new FormatError({ fn: FN, expected: `tensor "${name}" stored as F32, F16 or BF16`, got: entry.dtype });
    }
  }
  const unexpected = [...tensors.keys()].filter((name) => !expected.has(name) && !isIgnoredTensor(name));
  if (unexpected.length > 0) {
    const shown = unexpected.slice(0, 5).map((n) => `"${n}"`).join(', ');
    throw new FormatError({
      fn: FN,
      expected: `only the tensors of a ${config.modelType} (${config.attention}) model with these dimensions`,
      got: `${unexpected.length} unexpected: ${shown}${unexpected.length > 5 ? ', …' : ''}`,
    });
  }
}
