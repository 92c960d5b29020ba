// The bad-input catalogue: one table per package of every bad input a public function refuses
// and the error it gives. Each package keeps its rows in one module (its single source); this
// harness turns the rows into tests and checks that the docs page (apps/docs/guide/errors.md)
// shows exactly those rows, so the page and the tests cannot drift apart.
//
// Every row runs against a fresh scene (a layer, a cache holding a few tokens, …) on every
// backend given. A row passes when its call is refused with the named error class and a message
// matching its pattern (or, for NaN/Inf rows, completes with the non-finite values propagated),
// nothing it allocated is left behind, the scene's state (cache lengths and contents) is what it
// was before, and a valid call on the same scene still works.

import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type BackendFactory, describeEachBackend } from './backends.js';

/** What the harness needs from a backend (structural: testkit does not depend on tensor-core). */
export interface CatalogueBackend {
  readonly info: { readonly name: string };
  memory(): { readonly liveTensors: number; readonly liveBuffers: number };
  dispose(): Promise<void>;
}

export type CatalogueBackendFactory<B extends CatalogueBackend> = BackendFactory<string, B>;

/** The state a row works on: built fresh for each row, disposed after it. */
export interface CatalogueScene extends Disposable {
  /** State a refused call must leave as it was (cache lengths and contents); compared with toEqual. */
  snapshot(): Promise<unknown>;
  /** A valid call on the same objects after the error: proves the cache and backend still work. */
  valid(): Promise<void>;
  /**
   * Input tensors the scene has made for rows so far, and the buffers behind them (an empty
   * tensor has none): they are counted apart from what the refused call itself allocates, which
   * must be nothing.
   */
  inputs(): { readonly tensors: number; readonly buffers: number };
}

/** The rows' error classes, by name (the class's own `name`). */
export type CatalogueErrorName = 'ShapeError' | 'DTypeError' | 'CapacityError' | 'ConfigError' | 'BackendError' | 'FormatError' | 'AbortedError';

/** Which kind of bad input a row is: the docs group rows by it. */
export type CatalogueKind = 'rank / shape' | 'head count' | 'dtype' | 'NaN / Inf' | 'capacity' | 'truncation' | 'config' | 'file' | 'lifecycle';

interface RowBase {
  readonly kind: CatalogueKind;
  /** The bad input, in words. */
  readonly input: string;
  /** The call as a user writes it, e.g. `cache.updateAndFetch(k, v)`. */
  readonly call: string;
}

/** A call that must be refused. */
export interface RefusalRow<S> extends RowBase {
  readonly error: CatalogueErrorName;
  /** The message pattern (shown in the docs; messages read `[fn] expected X, got Y`). */
  readonly message: RegExp;
  readonly run: (scene: S) => unknown;
}

/** A call that must complete, with NaN / ±Inf in the inputs carried through to the outputs. */
export interface PropagationRow<S> extends RowBase {
  readonly error: 'none';
  /** What comes out, in words (the docs' message column). */
  readonly outcome: string;
  /** Runs the call and returns the output values it produced (the harness checks them). */
  readonly run: (scene: S) => Promise<Float32Array>;
  /** Checks the values (default: at least one NaN or ±Inf and no exception). */
  readonly check?: (values: Float32Array) => void;
}

export type CatalogueRow<S> = RefusalRow<S> | PropagationRow<S>;

export interface CatalogueSection<B extends CatalogueBackend, S extends CatalogueScene> {
  /** `@attnkit/kvcache`: the docs section's heading. */
  readonly package: string;
  /** One line under the heading. */
  readonly summary: string;
  /** Where the rows live, relative to the repository root (named in the docs). */
  readonly source: string;
  readonly scene: (backend: B) => Promise<S>;
  readonly rows: readonly CatalogueRow<S>[];
}

/**
 * Makes and owns a scene's input tensors, counting the tensors and buffers they hold (measured
 * on the backend, so an empty tensor counts whatever the backend allocates for it).
 */
export class SceneInputs {
  readonly #backend: CatalogueBackend;
  readonly #owned: { dispose(): void }[] = [];
  #tensors = 0;
  #buffers = 0;

  constructor(backend: CatalogueBackend) {
    this.#backend = backend;
  }

  /** Runs `make` and keeps what it returns, to be disposed with the scene. */
  add<T extends { dispose(): void }>(make: () => T): T {
    const before = this.#backend.memory();
    const t = make();
    const after = this.#backend.memory();
    this.#tensors += after.liveTensors - before.liveTensors;
    this.#buffers += after.liveBuffers - before.liveBuffers;
    this.#owned.push(t);
    return t;
  }

  counts(): { readonly tensors: number; readonly buffers: number } {
    return { tensors: this.#tensors, buffers: this.#buffers };
  }

  dispose(): void {
    for (const t of this.#owned.splice(0)) t.dispose();
  }
}

/** What the scene readers below need from a tensor (structural, like `CatalogueBackend`). */
export interface ReadableTensor {
  data(): Promise<Float32Array>;
  dispose(): void;
}

/**
 * For a scene's `snapshot()`: a tensor's values as a plain array (compared with `toEqual`), the
 * tensor disposed; null (a cache with nothing to read) stays null.
 */
export async function readAndDispose(tensor: ReadableTensor | null | Promise<ReadableTensor | null>): Promise<number[] | null> {
  const t = await tensor;
  if (!t) return null;
  try {
    return Array.from(await t.data());
  } finally {
    t.dispose();
  }
}

/** For a NaN / Inf row's `run`: the values of the tensor a call returns, the tensor disposed. */
export async function takeValues(tensor: ReadableTensor | Promise<ReadableTensor>): Promise<Float32Array> {
  const t = await tensor;
  try {
    return await t.data();
  } finally {
    t.dispose();
  }
}

const here = dirname(fileURLToPath(import.meta.url));
/** The docs page every section is rendered into. */
export const CATALOGUE_PAGE = join(here, '../../../apps/docs/guide/errors.md');

const escapeCell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const code = (text: string): string => {
  const cell = escapeCell(text);
  return cell.includes('`') ? `\`\` ${cell} \`\`` : `\`${cell}\``;
};

/** The section as Markdown: a heading, the summary and one table row per catalogue row. */
export function renderSection<S>(section: { readonly package: string; readonly summary: string; readonly source: string; readonly rows: readonly CatalogueRow<S>[] }): string {
  const lines = [
    `### ${section.package}`,
    '',
    `${section.summary} Rows: \`${section.source}\`.`,
    '',
    '| Kind | Bad input | Call | Error | Message (pattern) |',
    '|---|---|---|---|---|',
  ];
  for (const row of section.rows) {
    const error = row.error === 'none' ? 'none (propagates)' : code(row.error);
    const message = row.error === 'none' ? escapeCell(row.outcome) : code(`/${row.message.source}/`);
    lines.push(`| ${row.kind} | ${escapeCell(row.input)} | ${code(row.call)} | ${error} | ${message} |`);
  }
  return lines.join('\n');
}

const markers = (pkg: string): { start: string; end: string } => ({
  start: `<!-- catalogue:${pkg} (generated from the rows; ATTNKIT_UPDATE_CATALOGUE=1 to rewrite) -->`,
  end: `<!-- /catalogue:${pkg} -->`,
});

/** The rendered block of `pkg` in the docs page, or null when the page has no such block. */
export function pageBlock(page: string, pkg: string): string | null {
  const { start, end } = markers(pkg);
  const from = page.indexOf(start);
  const to = page.indexOf(end);
  if (from < 0 || to < from) return null;
  return page.slice(from + start.length, to).trim();
}

/** The page with `pkg`'s block replaced by `rendered` (the markers must exist). */
export function replaceBlock(page: string, pkg: string, rendered: string): string {
  const { start, end } = markers(pkg);
  const from = page.indexOf(start);
  const to = page.indexOf(end);
  if (from < 0 || to < from) throw new Error(`${CATALOGUE_PAGE} has no block for ${pkg}: add the lines\n${start}\n${end}`);
  return `${page.slice(0, from + start.length)}\n\n${rendered}\n\n${page.slice(to)}`;
}

function isNonFinite(values: Float32Array): boolean {
  return values.some((x) => !Number.isFinite(x));
}

/**
 * Registers the section's tests: every row on every backend, and the docs check. Call it at the
 * top level of a `*.test.ts` file.
 */
export function runCatalogue<B extends CatalogueBackend, S extends CatalogueScene>(section: CatalogueSection<B, S>, backends: readonly CatalogueBackendFactory<B>[]): void {
  describe(`catalogue ${section.package}`, () => {
    it('the docs page shows exactly these rows', () => {
      const rendered = renderSection(section);
      const page = readFileSync(CATALOGUE_PAGE, 'utf8');
      if (process.env.ATTNKIT_UPDATE_CATALOGUE === '1') {
        writeFileSync(CATALOGUE_PAGE, replaceBlock(page, section.package, rendered));
        return;
      }
      expect(pageBlock(page, section.package), `apps/docs/guide/errors.md is out of date for ${section.package}: run ATTNKIT_UPDATE_CATALOGUE=1 pnpm exec vitest run --project ${section.package} catalogue`).toBe(rendered);
    });

    describeEachBackend(
      backends,
      (name) => name,
      (useBackend) => {
        for (const row of section.rows) {
          it(`${row.kind}: ${row.input} → ${row.error}`, async () => {
            const backend = useBackend();
            const baseline = backend.memory();
            const scene = await section.scene(backend);
            try {
              const before = await scene.snapshot();
              const ready = backend.memory();
              const made = scene.inputs();
              if (row.error === 'none') {
                const values = await row.run(scene);
                if (row.check) row.check(values);
                else expect(isNonFinite(values), `${row.input}: the non-finite input reaches the output`).toBe(true);
              } else {
                let caught: unknown = null;
                try {
                  await row.run(scene);
                } catch (error) {
                  caught = error;
                }
                expect(caught, `${row.call} with ${row.input} did not throw`).toBeInstanceOf(Error);
                const error = caught instanceof Error ? caught : new Error('unreachable');
                expect(error.name, String(error)).toBe(row.error);
                expect(error.message).toMatch(row.message);
                const after = backend.memory();
                const now = scene.inputs();
                const inputs = { tensors: now.tensors - made.tensors, buffers: now.buffers - made.buffers };
                expect({ liveTensors: after.liveTensors - inputs.tensors, liveBuffers: after.liveBuffers - inputs.buffers }, 'a refused call leaves nothing allocated').toEqual({
                  liveTensors: ready.liveTensors,
                  liveBuffers: ready.liveBuffers,
                });
                // A refused call changes nothing; a propagating call may have appended (NaN rows).
                expect(await scene.snapshot(), 'the scene (cache lengths and contents) is unchanged').toEqual(before);
              }
              await scene.valid();
            } finally {
              scene[Symbol.dispose]();
            }
            const end = backend.memory();
            expect({ liveTensors: end.liveTensors, liveBuffers: end.liveBuffers }, 'the scene released everything').toEqual({
              liveTensors: baseline.liveTensors,
              liveBuffers: baseline.liveBuffers,
            });
          });
        }
      },
    );
  });
}
