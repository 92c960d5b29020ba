// pnpm bench (from packages/indexer-dsa, or `pnpm bench` at the root through turbo): CPU time
// per decoded token of DSA against dense MLA — the same MLA weights over the same latent cache —
// at contexts of 4K–128K tokens, with DSA's step split into its stages: the lightning indexer
// (key and query projections, scores over every cached key, top-k), MLA's projections and the
// cache appends, and the attention over the selected tokens.
//
//   tsx src/decode.bench.ts [--backend cpu] [--contexts 4096,16384,65536,131072] [--seconds 2]
//
// On a WebGPU backend both steps are also timed the way a decode loop uses a GPU (`gpu queued`):
// QUEUED_STEPS steps queued back to back, ended by one `onSubmittedWorkDone`, median of 5
// trials after a warm-up trial, with the host time until the last call returned. The attention
// operator alone at V3.2's full widths is operator.bench.ts.
//
// Records {name, implementation, backend, metric, value, unit} go to
// bench-results/indexer-dsa-decode.json at the repository root.

/// <reference types="@webgpu/types" />
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BACKEND_PREFERENCE, type Tensor, createBackend, isWebGpuHost, tensor } from '@attnkit/tensor-core';
import { benchArgs } from '@attnkit/bench/cli';
import { queuedSteps } from '@attnkit/bench/queued';
import { SeededRandom } from '@attnkit/testkit';
import { DSACache } from './cache.js';
import { DEEPSEEK_V32_DSA, type DSAConfigInput, resolveDSAConfig } from './config.js';
import { DSA } from './dsa.js';
import { randomDSAWeights, uploadDSAWeights } from './testing/fixtures/reference-dsa.js';

interface BenchRecord {
  readonly name: string;
  readonly implementation: string;
  readonly backend: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
}

const args = benchArgs('pnpm --filter @attnkit/indexer-dsa bench --', {
  backend: { type: 'string', default: 'cpu', help: `backend to measure on (one of ${BACKEND_PREFERENCE.join(', ')})` },
  contexts: { type: 'string', default: '4096,16384,65536,131072', help: 'context lengths, comma-separated' },
  seconds: { type: 'string', default: '2', help: 'minimum seconds per measurement' },
});
const contexts = args.integers('contexts') ?? [];
const minSeconds = args.positive('seconds') ?? 2;

/**
 * DeepSeek-V3.2-Exp with every width divided by 4 so a 128K context decodes on a 2-core CPU:
 * dim 1792, 32 heads, q_lora 384, C 128, dn 32, dr 16, dv 32; indexer 16 heads × 32. The
 * top-k stays DeepSeek's 2048: what the attention reads per query does not depend on the widths.
 */
const CONFIG: DSAConfigInput = {
  ...DEEPSEEK_V32_DSA,
  dim: 1792,
  nHeads: 32,
  qLoraRank: 384,
  kvLoraRank: 128,
  qkNopeHeadDim: 32,
  qkRopeHeadDim: 16,
  vHeadDim: 32,
  indexNHeads: 16,
  indexHeadDim: 32,
  indexTopk: 2048,
  maxSeqLen: Math.max(...contexts, 4096) + 64, // the longest context, or the 4K warm-up
};

/** Steps queued per trial of the GPU timing; trials after the warm-up one. */
const QUEUED_STEPS = 100;
const QUEUED_TRIALS = 5;

const config = resolveDSAConfig(CONFIG);
const requested = args.string('backend') ?? 'cpu';
const backendName = BACKEND_PREFERENCE.find((n) => n === requested);
if (!backendName) throw new Error(`unknown backend "${requested}" (one of ${BACKEND_PREFERENCE.join(', ')})`);
const { backend } = await createBackend({ prefer: backendName });
const device = isWebGpuHost(backend) ? backend.webgpu.device : null;
const rng = new SeededRandom(7);
const uniform = (n: number): Float32Array => {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.next() * 2 - 1;
  return out;
};
const records: BenchRecord[] = [];
const record = (name: string, implementation: string, metric: string, value: number, unit: string): void => {
  records.push({ name, implementation, backend: backend.info.name, metric, value, unit });
};

console.log(`indexer-dsa decode benchmark on ${backend.info.name} (${backend.info.adapter}), Node ${process.version}`);
console.log(
  `config: dim ${config.dim}, H ${config.nHeads}, q_lora ${config.qLoraRank}, C ${config.kvLoraRank}, dn ${config.qkNopeHeadDim}, dr ${config.qkRopeHeadDim}, dv ${config.vHeadDim}; ` +
    `indexer H_I ${config.indexNHeads} × D_I ${config.indexHeadDim}, top-k ${config.indexTopk}, ${config.indexPrecision}; YaRN ${config.yarnActive ? 'on' : 'off'}; batch 1, f32`,
);
console.log('CPU milliseconds per decoded token (median step after a warm-up step)\n');
console.log(
  `${'context'.padStart(8)} ${'dense MLA'.padStart(10)} ${'DSA'.padStart(9)} ${'= indexer'.padStart(10)} ${'+ attention'.padStart(12)} ${'+ rest'.padStart(8)} ${'speed-up'.padStart(9)}   KV held (latent + index keys)`,
);

const dsa = await DSA.fromRecord(backend, config, uploadDSAWeights(backend, config, randomDSAWeights(config, 1)), { ownsWeights: true });
{
  // Warm the JIT on every path at a short context first, so the first row is not slower for it.
  using cache = await filledCache(4096);
  using x = tensor(backend, uniform(config.dim), [1, 1, config.dim]);
  for (let i = 0; i < 3; i++) {
    (await dsa.mla.forward(x, { cache: cache.latent })).dispose();
    cache.latent.truncate(4096);
    (await dsa.forward(x, { cache })).dispose();
    cache.truncate(4096);
  }
  await timeStages(dsa, cache, x, 4096);
}
for (const T of contexts) {
  const name = `decode ctx=${T}`;
  using cache = await filledCache(T);
  using x = tensor(backend, uniform(config.dim), [1, 1, config.dim]);

  const denseStep = async (): Promise<void> => {
    (await dsa.mla.forward(x, { cache: cache.latent })).dispose();
    cache.latent.truncate(T);
  };
  const sparseStep = async (): Promise<void> => {
    (await dsa.forward(x, { cache })).dispose();
    cache.truncate(T);
  };
  const dense = await timeSteps(denseStep);
  const sparse = await timeSteps(sparseStep);
  const stages = await timeStages(dsa, cache, x, T);
  const queued = { steps: QUEUED_STEPS, trials: QUEUED_TRIALS };
  const gpu = device ? { dense: await queuedSteps(device.queue, denseStep, queued), dsa: await queuedSteps(device.queue, sparseStep, queued) } : null;

  record(name, 'mla-dense', 'decode time per token (CPU)', dense, 'ms');
  record(name, 'dsa', 'decode time per token (CPU)', sparse, 'ms');
  record(name, 'dsa-indexer', 'decode time per token (CPU)', stages.indexer, 'ms');
  record(name, 'dsa-attention', 'decode time per token (CPU)', stages.attention, 'ms');
  record(name, 'dsa-rest', 'decode time per token (CPU)', stages.rest, 'ms');
  record(name, 'dsa', 'kv bytes held', cache.nbytes, 'B');
  console.log(
    `${String(T).padStart(8)} ${ms(dense).padStart(10)} ${ms(sparse).padStart(9)} ${ms(stages.indexer).padStart(10)} ${ms(stages.attention).padStart(12)} ${ms(stages.rest).padStart(8)} ` +
      `${`${(dense / sparse).toFixed(1)}×`.padStart(9)}   ${mib(cache.latent.nbytes)} + ${mib(cache.indexKeys.nbytes)}`,
  );
  if (gpu) {
    for (const [implementation, t] of [['mla-dense', gpu.dense], ['dsa', gpu.dsa]] as const) {
      record(name, implementation, 'gpu queued', t.done, 'ms');
      record(name, implementation, 'host time (queued)', t.host, 'ms');
    }
    record(name, 'dsa', 'speed-up (gpu queued)', gpu.dense.done / gpu.dsa.done, '×');
    console.log(
      `${''.padStart(8)} gpu queued: dense MLA ${ms(gpu.dense.done)} ms (host ${ms(gpu.dense.host)}), DSA ${ms(gpu.dsa.done)} ms (host ${ms(gpu.dsa.host)}): ${(gpu.dense.done / gpu.dsa.done).toFixed(1)}×`,
    );
  }
}
dsa.dispose();
await backend.dispose();

const out = resolve(dirname(fileURLToPath(import.meta.url)), '../../../bench-results/indexer-dsa-decode.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(records, null, 2)}\n`);
console.log(`\nrecords: ${out}`);

// ---------------------------------------------------------------------------------------------

/** Both caches holding a context of T random rows, with room for the measured step. */
async function filledCache(T: number): Promise<DSACache> {
  const { kvLoraRank: C, qkRopeHeadDim: dr, indexHeadDim: DI } = config;
  const cache = new DSACache(backend, config, { batchSize: 1, initialCapacity: T + 1, maxCapacity: T + 1 });
  {
    using latent = tensor(backend, uniform(T * (C + dr)), [1, T, 1, C + dr]);
    using keys = tensor(backend, uniform(T * DI), [1, T, 1, DI]);
    await cache.latent.updateAndFetch(latent, null);
    await cache.indexKeys.updateAndFetch(keys, null);
  }
  return cache;
}

/** `work`'s result and its CPU milliseconds (this process is single-threaded: CPU time is the time the step needs). */
async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = process.cpuUsage();
  const value = await work();
  const { user, system } = process.cpuUsage(start);
  return { value, ms: (user + system) / 1000 };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length / 2;
  return s.length % 2 === 1 ? (s[Math.floor(mid)] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** Median CPU ms of a step: one warm-up, then steps until `minSeconds` passed (at least 3, at most 50). */
async function timeSteps(step: () => Promise<void>): Promise<number> {
  await step();
  const samples: number[] = [];
  let spent = 0;
  while (samples.length < 3 || (spent < minSeconds * 1000 && samples.length < 50)) {
    const { ms: t } = await timed(step);
    samples.push(t);
    spent += t;
  }
  return median(samples);
}

/** DSA.forward's stages run one by one through the public APIs, each timed; medians over the steps after a warm-up. */
async function timeStages(layer: DSA, cache: DSACache, x: Tensor, T: number): Promise<{ indexer: number; attention: number; rest: number }> {
  const samples = { indexer: [] as number[], attention: [] as number[], rest: [] as number[] };
  let spent = 0;
  for (let n = 0; n < 4 || (spent < minSeconds * 1000 && n < 50); n++) {
    const project = await timed(() => layer.mla.project(x, [T]));
    using projection = project.value;
    const { queryLatent, positions, kvRows } = projection;
    if (!queryLatent) throw new Error('DSA needs the query latent');
    const keys = await timed(() => layer.indexer.projectKeys(x, positions));
    using indexRows = keys.value;
    const append = await timed(async () => ({ latent: await cache.latent.updateAndFetch(kvRows, null), index: await cache.indexKeys.updateAndFetch(indexRows, null) }));
    const select = await timed(async () => {
      using queries = await layer.indexer.projectQueries(x, queryLatent, positions);
      return await layer.indexer.select(queries, append.value.index);
    });
    using selection = select.value;
    const attend = await timed(async () => (await layer.mla.attend(projection, append.value.latent, { selectedKeys: selection.indices, distinctSelectedKeys: true })).y.dispose());
    cache.truncate(T);
    if (n === 0) continue; // warm-up
    samples.indexer.push(keys.ms + select.ms);
    samples.attention.push(attend.ms);
    samples.rest.push(project.ms + append.ms);
    spent += keys.ms + select.ms + attend.ms + project.ms + append.ms;
  }
  return { indexer: median(samples.indexer), attention: median(samples.attention), rest: median(samples.rest) };
}

function ms(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
