// Node-only helpers: read a checkpoint folder into the in-memory map the browser-safe loader
// takes, and find the embedded checkpoints. Import from '@attnkit/reference-model/node'.

import { readFile, readdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Backend, FormatError } from '@attnkit/tensor-core';
import type { CheckpointFiles } from './model/checkpoint.js';
import { Model } from './model/model.js';

/** The folder of the embedded trained checkpoints (apps/reference-model/checkpoints). */
export const CHECKPOINTS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../checkpoints');

/** Reads config.json, the .safetensors file(s) and the shard index of a checkpoint folder. */
export async function readCheckpointFolder(dir: string): Promise<CheckpointFiles> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    throw new FormatError({ fn: 'readCheckpointFolder', expected: `a checkpoint folder at ${dir}`, got: error instanceof Error ? error.message : String(error) });
  }
  const wanted = names.filter((n) => n === 'config.json' || n === 'model.safetensors.index.json' || (n.endsWith('.safetensors') && !n.startsWith('expected_')));
  const files = new Map<string, Uint8Array>();
  for (const name of wanted) files.set(name, new Uint8Array(await readFile(join(dir, name))));
  return files;
}

/** Loads a checkpoint folder onto `backend`. */
export async function loadModelFromFolder(backend: Backend, dir: string): Promise<Model> {
  return Model.load(backend, await readCheckpointFolder(dir));
}

/** The embedded checkpoints: name → folder, and the default (checkpoints/DEFAULT). */
export async function embeddedCheckpoints(): Promise<{ names: string[]; defaultName: string; dir: (name: string) => string }> {
  const entries = await readdir(CHECKPOINTS_DIR, { withFileTypes: true });
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const defaultName = (await readFile(join(CHECKPOINTS_DIR, 'DEFAULT'), 'utf8')).trim();
  return { names, defaultName, dir: (name) => join(CHECKPOINTS_DIR, name) };
}
