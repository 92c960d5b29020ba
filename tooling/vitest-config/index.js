// Tests run against the TypeScript sources, never against dist/: the same source paths that
// tooling/tsconfig/base.json gives the type checker become vitest aliases here, so `pnpm test`
// needs no build and the two can never disagree about where a package lives.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

/** Exact-match aliases for every `@attnkit/*` entry point, pointing at its `src/` file. */
export function sourceAliases() {
  const base = JSON.parse(readFileSync(join(here, '../tsconfig/base.json'), 'utf8'));
  const tsconfigDir = join(here, '../tsconfig');
  return Object.entries(base.compilerOptions.paths).map(([name, [target]]) => ({
    find: new RegExp(`^${name.replace(/[/.]/g, '\\$&')}$`),
    replacement: resolve(tsconfigDir, target),
  }));
}

/** One vitest project per workspace folder that has tests, named after its package. */
export function workspaceProjects(rootDir) {
  const projects = [];
  for (const group of ['packages', 'tooling', 'apps']) {
    const groupDir = join(rootDir, group);
    if (!existsSync(groupDir)) continue;
    for (const folder of readdirSync(groupDir).sort()) {
      const dir = join(groupDir, folder);
      const manifest = join(dir, 'package.json');
      if (!existsSync(manifest) || !existsSync(join(dir, 'src'))) continue;
      // `attnkitTest` in a package.json adds test options for that project only (the soak
      // project's --expose-gc, so its heap checks measure after a full collection).
      const { name, attnkitTest } = JSON.parse(readFileSync(manifest, 'utf8'));
      projects.push({
        extends: true,
        test: {
          name,
          root: dir,
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          ...(attnkitTest?.execArgv ? { execArgv: attnkitTest.execArgv } : {}),
        },
      });
    }
  }
  return projects;
}
