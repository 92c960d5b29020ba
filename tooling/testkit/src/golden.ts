// Reader for the golden-vector folder format (shared/golden/README.md): an index.json listing
// cases, and per case a manifest.json plus raw little-endian float32 files.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export type GoldenVariant = 'rope' | 'mha' | 'gqa' | 'mqa' | 'mla' | 'dsa' | 'nsa';

export interface GoldenTensorSpec {
  readonly file: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly layout?: string;
}

export interface GoldenTolerance {
  readonly atol: number;
  readonly rtol: number;
}

export interface GoldenManifest {
  readonly name: string;
  readonly variant: string;
  readonly description: string;
  readonly seed?: number;
  readonly config: Readonly<Record<string, unknown>>;
  readonly inputs: Readonly<Record<string, GoldenTensorSpec>>;
  readonly weights: Readonly<Record<string, GoldenTensorSpec>>;
  readonly expected: Readonly<Record<string, GoldenTensorSpec>>;
  readonly tolerance: GoldenTolerance;
  readonly compare?: string;
  readonly notes?: readonly string[];
}

/** A float32 array with its shape, as stored in a golden case. */
export interface GoldenArray {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

export class GoldenCase {
  readonly #cache = new Map<string, GoldenArray>();

  constructor(
    readonly dir: string,
    readonly manifest: GoldenManifest,
  ) {}

  get name(): string {
    return this.manifest.name;
  }

  get variant(): string {
    return this.manifest.variant;
  }

  /** Reads an input, weight or expected tensor by its manifest key. */
  tensor(key: string): GoldenArray {
    const cached = this.#cache.get(key);
    if (cached) return cached;
    const spec = this.manifest.inputs[key] ?? this.manifest.weights[key] ?? this.manifest.expected[key];
    if (!spec) throw new Error(`golden case ${this.name}: no tensor "${key}" in its manifest`);
    if (spec.dtype !== 'float32') {
      throw new Error(`golden case ${this.name}: tensor "${key}" has dtype ${spec.dtype}; only float32 is defined`);
    }
    const bytes = readFileSync(join(this.dir, spec.file));
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (bytes.byteLength !== count * 4) {
      throw new Error(
        `golden case ${this.name}: ${spec.file} holds ${bytes.byteLength} bytes, expected ${count * 4} for shape [${spec.shape.join(', ')}]`,
      );
    }
    // Buffers may start at an unaligned offset: copy into a fresh, aligned array.
    const data = new Float32Array(new Uint8Array(bytes).buffer);
    const array = { shape: spec.shape, data };
    this.#cache.set(key, array);
    return array;
  }

  has(key: string): boolean {
    return key in this.manifest.inputs || key in this.manifest.weights || key in this.manifest.expected;
  }

  /** A config value, typed by a runtime check so a malformed manifest fails loudly. */
  number(key: string): number {
    const value = this.manifest.config[key];
    if (typeof value !== 'number') throw new Error(`golden case ${this.name}: config.${key} is ${JSON.stringify(value)}, expected a number`);
    return value;
  }

  optionalNumber(key: string): number | undefined {
    const value = this.manifest.config[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value !== 'number') throw new Error(`golden case ${this.name}: config.${key} is ${JSON.stringify(value)}, expected a number`);
    return value;
  }

  string(key: string): string {
    const value = this.manifest.config[key];
    if (typeof value !== 'string') throw new Error(`golden case ${this.name}: config.${key} is ${JSON.stringify(value)}, expected a string`);
    return value;
  }

  boolean(key: string, fallback?: boolean): boolean {
    const value = this.manifest.config[key];
    if (value === undefined && fallback !== undefined) return fallback;
    if (typeof value !== 'boolean') throw new Error(`golden case ${this.name}: config.${key} is ${JSON.stringify(value)}, expected a boolean`);
    return value;
  }
}

/** `shared/golden` beside the checkout: the default folder of `pnpm golden` and of the tests. */
export function defaultGoldenDir(): string {
  const fromEnv = process.env.ATTNKIT_GOLDEN_DIR;
  if (fromEnv) return resolve(fromEnv);
  const here = dirname(fileURLToPath(import.meta.url));
  const repoRoot = resolve(here, '../../..');
  for (const candidate of [join(repoRoot, 'shared/golden'), join(repoRoot, '../shared/golden')]) {
    if (existsSync(join(candidate, 'index.json')) || existsSync(candidate)) return candidate;
  }
  return join(repoRoot, '../shared/golden');
}

/** Every case of a golden folder, in index.json order (or folder order if there is no index). */
export function loadGoldenCases(dir: string = defaultGoldenDir()): GoldenCase[] {
  if (!existsSync(dir)) throw new Error(`golden folder ${dir} does not exist`);
  const indexPath = join(dir, 'index.json');
  let names: string[];
  if (existsSync(indexPath)) {
    const index: unknown = JSON.parse(readFileSync(indexPath, 'utf8'));
    if (!Array.isArray(index)) throw new Error(`${indexPath}: expected a JSON array of cases`);
    names = index.map((entry: unknown, i) => {
      if (typeof entry === 'object' && entry !== null && 'name' in entry && typeof entry.name === 'string') return entry.name;
      throw new Error(`${indexPath}: entry ${i} has no "name"`);
    });
  } else {
    names = readdirSync(dir)
      .filter((n) => statSync(join(dir, n)).isDirectory() && existsSync(join(dir, n, 'manifest.json')))
      .sort();
  }
  return names.map((name) => {
    const caseDir = join(dir, name);
    const raw = JSON.parse(readFileSync(join(caseDir, 'manifest.json'), 'utf8')) as GoldenManifest;
    // A case may omit inputs or weights (rope has no weights); the reader treats them as empty.
    const manifest: GoldenManifest = { ...raw, inputs: raw.inputs ?? {}, weights: raw.weights ?? {} };
    return new GoldenCase(caseDir, manifest);
  });
}
