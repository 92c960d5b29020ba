// Bundles a package's vitest suite for the browser with esbuild: `vitest` becomes the shim in
// vitest-shim.ts (vitest's own expect), Node's fs / path / url become node-shims.ts over the
// golden files embedded in the bundle, and `@attnkit/*` resolve to the TypeScript sources as
// under vitest. The result is one ES module that runs the suite when the page calls
// `window.__attnkitSuite()`.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { sourceAliases } from '@attnkit/vitest-config';
import { type Plugin, build } from 'esbuild';

const here = import.meta.dirname;
export const REPO_ROOT = resolve(here, '../../../../..');

export interface BundleOptions {
  /** The suite, relative to the repository root (a `*.test.ts` file). */
  readonly suite: string;
  /** The golden folder; its index, every manifest and the data of the cases `goldenData` keeps are embedded. */
  readonly goldenDir?: string;
  readonly goldenData?: (caseName: string) => boolean;
}

/** Golden files as `/golden/<relative path>` → base64, for node-shims.ts. */
function goldenFiles(dir: string, keepData: (caseName: string) => boolean): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      const rel = relative(dir, path).split(sep);
      const isData = rel.length > 1 && rel[rel.length - 1] !== 'manifest.json';
      if (isData && !keepData(rel[0] ?? '')) continue;
      out[`/golden/${rel.join('/')}`] = readFileSync(path).toString('base64');
    }
  };
  walk(dir);
  return out;
}

function shims(options: BundleOptions): Plugin {
  const aliases = sourceAliases();
  return {
    name: 'attnkit-browser-suite',
    setup(b) {
      b.onResolve({ filter: /^vitest$/ }, () => ({ path: join(here, 'vitest-shim.ts') }));
      b.onResolve({ filter: /^(node:)?(fs|path|url)$/ }, () => ({ path: join(here, 'node-shims.ts') }));
      b.onResolve({ filter: /^attnkit:golden-files$/ }, () => ({ path: 'golden-files', namespace: 'attnkit' }));
      b.onLoad({ filter: /.*/, namespace: 'attnkit' }, () => ({
        contents: `export const GOLDEN_FILES = ${JSON.stringify(options.goldenDir ? goldenFiles(options.goldenDir, options.goldenData ?? (() => false)) : {})};`,
        loader: 'js',
      }));
      b.onResolve({ filter: /^@attnkit\// }, (args) => {
        const hit = aliases.find((a) => a.find.test(args.path));
        return hit ? { path: hit.replacement } : undefined;
      });
    },
  };
}

/** The suite as one browser ES module. */
export async function bundleSuite(options: BundleOptions): Promise<string> {
  const suite = resolve(REPO_ROOT, options.suite);
  const entry = [
    `import { runSuite } from ${JSON.stringify(join(here, 'vitest-shim.ts'))};`,
    `import ${JSON.stringify(suite)};`,
    'window.__attnkitSuite = () => runSuite((r) => console.log(`[suite] ${r.status} ${r.name}${r.error ? `: ${r.error}` : ""}`));',
  ].join('\n');
  const result = await build({
    stdin: { contents: entry, resolveDir: here, sourcefile: 'suite-entry.ts', loader: 'ts' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    // the packages say `sideEffects: false`, but a test file is imported for its side effects
    ignoreAnnotations: true,
    // the optional Node WebGPU import in modes.ts is a computed specifier; browsers have navigator.gpu
    plugins: [shims(options)],
  });
  const [out] = result.outputFiles;
  if (!out) throw new Error(`esbuild produced no output for ${options.suite}`);
  return out.text;
}
