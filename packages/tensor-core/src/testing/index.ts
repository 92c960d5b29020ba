// Test support shared by every package's tests (not part of the runtime API): the backends
// available on this machine, so one suite runs on each of them.
import type { Backend } from '../backend.js';
import { type BackendName, createBackend } from '../create-backend.js';

export interface TestBackend {
  readonly name: BackendName;
  /** Creates a fresh backend instance (dispose it after the test). */
  create(): Promise<Backend>;
}

const ALL: readonly BackendName[] = ['cpu', 'gpujs-cpu', 'gpujs-webasm', 'gpujs-webgpu', 'gpujs-webgl2', 'gpujs-webgl', 'gpujs-headlessgl'];

/**
 * Backends to test on. `ATTNKIT_BACKENDS=cpu,gpujs-webasm` narrows the list;
 * `ATTNKIT_REQUIRE_BACKENDS=…` (set by CI) makes a listed backend that fails to start an error
 * instead of a skip.
 */
export async function availableBackends(): Promise<{ available: TestBackend[]; skipped: { name: BackendName; reason: string }[] }> {
  const wanted = parseList(process.env.ATTNKIT_BACKENDS) ?? ALL;
  const required = parseList(process.env.ATTNKIT_REQUIRE_BACKENDS) ?? [];
  const available: TestBackend[] = [];
  const skipped: { name: BackendName; reason: string }[] = [];
  for (const name of ALL) {
    if (!wanted.includes(name)) continue;
    try {
      const { backend } = await createBackend({ prefer: name });
      await backend.dispose();
      available.push({ name, create: async () => (await createBackend({ prefer: name })).backend });
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      if (required.includes(name)) throw new Error(`required test backend ${name} is unavailable: ${reason}`);
      skipped.push({ name, reason });
    }
  }
  return { available, skipped };
}

function parseList(value: string | undefined): BackendName[] | undefined {
  if (!value) return undefined;
  const names = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const n of names) if (!ALL.some((known) => known === n)) throw new Error(`unknown backend "${n}" in the environment; known: ${ALL.join(', ')}`);
  return ALL.filter((n) => names.includes(n));
}
