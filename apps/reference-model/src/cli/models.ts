// `--model`: a checkpoint folder, or the name of an embedded one (checkpoints/fortunes-*).

import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { embeddedCheckpoints } from '../node.js';

export interface ModelRef {
  /** Short name for tables and legends (the folder's name). */
  readonly name: string;
  readonly dir: string;
}

export async function resolveModel(arg: string | undefined): Promise<ModelRef> {
  // A folder that exists wins over an embedded name (and needs no embedded checkpoints at all).
  if (arg !== undefined && existsSync(arg)) return { name: basename(resolve(arg)), dir: resolve(arg) };
  const embedded = await embeddedCheckpoints();
  if (arg === undefined) return { name: embedded.defaultName, dir: embedded.dir(embedded.defaultName) };
  if (embedded.names.includes(arg)) return { name: arg, dir: embedded.dir(arg) };
  return { name: basename(resolve(arg)), dir: resolve(arg) };
}

/** Every embedded checkpoint, in a fixed order (dense first, then the sparse variants). */
export async function allEmbedded(): Promise<ModelRef[]> {
  const embedded = await embeddedCheckpoints();
  const order = ['mha', 'gqa', 'mla', 'dsa', 'nsa'];
  const rank = (n: string): number => {
    const i = order.findIndex((v) => n.endsWith(`-${v}`));
    return i < 0 ? order.length : i;
  };
  return [...embedded.names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).map((name) => ({ name, dir: embedded.dir(name) }));
}
