// The API reference documents exactly what each package publishes: its `exports` map. Every
// subpath export `./x` → `./dist/y.js` becomes the entry point `src/y.ts`, named `@attnkit/pkg/x`,
// so a new entry point shows up in the reference without touching the docs.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Subpaths that are not runtime API: test support and the manifest. */
const UNDOCUMENTED = new Set(['./package.json', './testing']);

/** @returns {{ name: string, file: string }[]} every documented entry point of packages/*, sorted by name */
export function apiEntryPoints() {
  const entries = [];
  const packagesDir = join(repoRoot, 'packages');
  for (const folder of readdirSync(packagesDir).sort()) {
    const dir = join(packagesDir, folder);
    const manifestPath = join(dir, 'package.json');
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
    for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
      if (UNDOCUMENTED.has(subpath)) continue;
      const built = typeof target === 'string' ? target : target.default;
      if (typeof built !== 'string') continue;
      const file = join(dir, built.replace(/^\.\/dist\//, 'src/').replace(/\.js$/, '.ts'));
      if (!existsSync(file)) throw new Error(`typedoc: ${manifest.name} exports ${subpath} → ${built}, but its source ${file} does not exist`);
      entries.push({ name: subpath === '.' ? manifest.name : `${manifest.name}/${subpath.slice(2)}`, file });
    }
  }
  return entries.sort((a, b) => a.name.localeCompare(b.name));
}
