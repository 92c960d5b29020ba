// The few Node built-ins the bundled suites touch, for the browser: a read-only in-memory file
// system holding the golden vectors (embedded into the bundle by the harness), POSIX paths and
// file URLs. Anything else a suite asks of them throws, naming what is missing.
import { GOLDEN_FILES } from 'attnkit:golden-files';

function decode(base64: string): Uint8Array {
  const bin = atob(base64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

const files = new Map<string, Uint8Array>(Object.entries(GOLDEN_FILES).map(([path, base64]) => [path, decode(base64)]));
const directories = new Set<string>();
for (const path of files.keys()) for (let d = dirname(path); d !== '/' && !directories.has(d); d = dirname(d)) directories.add(d);

export function normalize(path: string): string {
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

export function join(...parts: string[]): string {
  return normalize(parts.join('/'));
}

export function resolve(...parts: string[]): string {
  const from = parts.reduce((acc, p) => (p.startsWith('/') ? p : `${acc}/${p}`), '/');
  return normalize(from);
}

export function dirname(path: string): string {
  const n = normalize(path);
  const cut = n.lastIndexOf('/');
  return cut <= 0 ? '/' : n.slice(0, cut);
}

export const sep = '/';

export function fileURLToPath(url: string | URL): string {
  return new URL(url).pathname;
}

export function existsSync(path: string): boolean {
  const n = normalize(path);
  return files.has(n) || directories.has(n);
}

export function readFileSync(path: string, encoding?: string): Uint8Array | string {
  const bytes = files.get(normalize(path));
  if (!bytes) throw new Error(`ENOENT: ${path} is not among the files the browser harness embedded`);
  return encoding ? new TextDecoder().decode(bytes) : bytes;
}

export function statSync(path: string): { isDirectory(): boolean; isFile(): boolean } {
  const n = normalize(path);
  if (!existsSync(n)) throw new Error(`ENOENT: ${path}`);
  return { isDirectory: () => directories.has(n), isFile: () => files.has(n) };
}

export function readdirSync(path: string): string[] {
  const n = normalize(path);
  const names = new Set<string>();
  for (const p of [...files.keys(), ...directories]) if (dirname(p) === n) names.add(p.slice(n.length + 1));
  return [...names].sort();
}

function missing(name: string): never {
  throw new Error(`${name} is not available in the browser harness`);
}

export function writeFileSync(): never {
  return missing('fs.writeFileSync');
}
