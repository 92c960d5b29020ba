// The reference model's trained checkpoints (apps/reference-model/checkpoints) as static files of
// the site, without a copy in git: the dev server serves them from that folder, the build emits
// them into dist/checkpoints/<name>/, and `virtual:attnkit-checkpoints` tells the page which
// exist, which is the default (checkpoints/DEFAULT), their attention and their file sizes.
// Only what the browser needs is published: config.json, the weights and the expected logits.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vite';

export const CHECKPOINTS_DIR = fileURLToPath(new URL('../../reference-model/checkpoints', import.meta.url));
/** The files of a checkpoint folder the page fetches. */
const PUBLISHED = ['config.json', 'model.safetensors', 'expected_logits.safetensors', 'expected_logits.json'] as const;
const VIRTUAL = 'virtual:attnkit-checkpoints';
const URL_PREFIX = '/checkpoints/';

interface ListedCheckpoint {
  readonly name: string;
  readonly modelType: string;
  readonly files: Readonly<Record<string, number>>;
}

function listCheckpoints(): { defaultName: string; checkpoints: ListedCheckpoint[] } {
  const defaultName = readFileSync(join(CHECKPOINTS_DIR, 'DEFAULT'), 'utf8').trim();
  const checkpoints = readdirSync(CHECKPOINTS_DIR, { withFileTypes: true })
    .filter((e) => e.isDirectory() && PUBLISHED.every((f) => existsSync(join(CHECKPOINTS_DIR, e.name, f))))
    .map((e) => {
      const config: unknown = JSON.parse(readFileSync(join(CHECKPOINTS_DIR, e.name, 'config.json'), 'utf8'));
      const modelType: unknown = typeof config === 'object' && config !== null ? Reflect.get(config, 'model_type') : undefined;
      const files = Object.fromEntries(PUBLISHED.map((f) => [f, statSync(join(CHECKPOINTS_DIR, e.name, f)).size]));
      return { name: e.name, modelType: typeof modelType === 'string' ? modelType : 'unknown', files };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  if (!checkpoints.some((c) => c.name === defaultName)) throw new Error(`checkpoints: DEFAULT names ${defaultName}, which has no complete folder in ${CHECKPOINTS_DIR}`);
  return { defaultName, checkpoints };
}

/** `/checkpoints/<name>/<file>` → the file on disk, for published files of listed checkpoints only. */
function fileFor(url: string, names: ReadonlySet<string>): string | null {
  const [name, file, ...rest] = url.slice(URL_PREFIX.length).split('?')[0]?.split('/') ?? [];
  if (!name || !file || rest.length > 0 || !names.has(name) || !PUBLISHED.some((f) => f === file)) return null;
  return join(CHECKPOINTS_DIR, name, file);
}

export function checkpointsPlugin(): Plugin {
  let ssr = false;
  return {
    name: 'attnkit-checkpoints',
    configResolved(config) {
      ssr = Boolean(config.build.ssr);
    },
    resolveId(id) {
      return id === VIRTUAL ? `\0${VIRTUAL}` : null;
    },
    load(id) {
      if (id !== `\0${VIRTUAL}`) return null;
      return `export default ${JSON.stringify(listCheckpoints())};`;
    },
    configureServer(server) {
      const names = new Set(listCheckpoints().checkpoints.map((c) => c.name));
      server.middlewares.use((req, res, next) => {
        const path = req.url?.startsWith(URL_PREFIX) ? fileFor(req.url, names) : null;
        if (!path) {
          next();
          return;
        }
        res.setHeader('Content-Type', path.endsWith('.json') ? 'application/json' : 'application/octet-stream');
        res.end(readFileSync(path));
      });
    },
    generateBundle() {
      if (ssr) return; // the client build carries the static files
      for (const { name } of listCheckpoints().checkpoints) {
        for (const file of PUBLISHED) {
          this.emitFile({ type: 'asset', fileName: `checkpoints/${name}/${file}`, source: readFileSync(join(CHECKPOINTS_DIR, name, file)) });
        }
      }
    },
  };
}
