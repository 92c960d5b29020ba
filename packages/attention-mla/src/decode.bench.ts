// pnpm bench (from packages/attention-mla, or `pnpm bench` at the root through turbo):
// decode tokens/s of MLA (absorbed and naive) against an MHA layer of the same width, at
// contexts of 1K–64K tokens, with the KV bytes each one holds; then prefill calls in both
// orders beside the order the cost rule picks, and the element-vs-MAC cost of this backend.
//
//   tsx src/decode.bench.ts [--backend cpu] [--contexts 1024,4096,16384,65536] [--seconds 2]
//
// Records {name, implementation, backend, metric, value, unit} go to
// bench-results/attention-mla-decode.json at the repository root.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchArgs } from '@attnkit/bench/cli';
import { attention } from '@attnkit/attention-mha';
import { type CacheView, ContiguousKVCache, MLALatentCache } from '@attnkit/kvcache';
import { BACKEND_PREFERENCE, type Backend, type Tensor, concat, createBackend, linear, reshape, rope, ropeInvFreq, tensor } from '@attnkit/tensor-core';
import { SeededRandom } from '@attnkit/testkit';
import { DEEPSEEK_V2_LITE_MLA, type MLAConfigInput, resolveMLAConfig } from './config.js';
import { chooseOrder, ELEMENT_COST_MACS, orderCosts, type MLAOrder } from './cost.js';
import { MLA } from './mla.js';
import { randomMLAWeights, uploadMLAWeights } from './testing/fixtures/reference-mla.js';

interface BenchRecord {
  readonly name: string;
  readonly implementation: string;
  readonly backend: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
}

const args = benchArgs('pnpm --filter @attnkit/attention-mla bench --', {
  backend: { type: 'string', default: 'cpu', help: `backend to measure on (one of ${BACKEND_PREFERENCE.join(', ')})` },
  contexts: { type: 'string', default: '1024,4096,16384,65536', help: 'context lengths, comma-separated' },
  seconds: { type: 'string', default: '2', help: 'minimum seconds per measurement' },
});
const contexts = args.integers('contexts') ?? [];
const minSeconds = args.positive('seconds') ?? 2;

/**
 * DeepSeek-V2-Lite (16 heads, no query compression, mscale 0.707, YaRN on) with every width
 * divided by 4 so a 64K context runs on a 2-core CPU: dim 512, C 128, dn 32, dr 16, dv 32.
 * Per token the latent cache holds C+dr = 144 values, an MHA cache with the same head dims
 * 16·(48+32) = 1280: the same 8.9× ratio as the full-size model (576 vs 5120).
 */
const CONFIG: MLAConfigInput = {
  ...DEEPSEEK_V2_LITE_MLA,
  dim: 512,
  kvLoraRank: 128,
  qkNopeHeadDim: 32,
  qkRopeHeadDim: 16,
  vHeadDim: 32,
  maxSeqLen: Math.max(...contexts, 4096) + 64, // the longest context, or the 4K calls of the order check
};

const records: BenchRecord[] = [];
const config = resolveMLAConfig(CONFIG);
const requested = args.string('backend') ?? 'cpu';
const backendName = BACKEND_PREFERENCE.find((n) => n === requested);
if (!backendName) throw new Error(`unknown backend "${requested}" (one of ${BACKEND_PREFERENCE.join(', ')})`);
const { backend } = await createBackend({ prefer: backendName });
const rng = new SeededRandom(7);
const uniform = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.next() * 2 - 1);

console.log(`attention-mla decode benchmark on ${backend.info.name} (${backend.info.adapter}), Node ${process.version}`);
console.log(
  `config: dim ${config.dim}, H ${config.nHeads}, q_lora ${config.qLoraRank}, C ${config.kvLoraRank}, dn ${config.qkNopeHeadDim}, dr ${config.qkRopeHeadDim}, dv ${config.vHeadDim}, YaRN ${config.yarnActive ? 'on' : 'off'}; batch 1, f32`,
);

const mla = await MLA.fromRecord(backend, config, uploadMLAWeights(backend, config, randomMLAWeights(config, 1)), { ownsWeights: true });
const mha = createMHA(backend);

for (const T of contexts) {
  for (const implementation of ['mla-absorbed', 'mla-naive', 'mha'] as const) {
    const result = implementation === 'mha' ? await decodeMHA(T) : await decodeMLA(T, implementation === 'mla-absorbed' ? 'absorbed' : 'naive');
    const row = `decode ctx=${T}`;
    records.push({ name: row, implementation, backend: backend.info.name, metric: 'decode (CPU time)', value: result.tokensPerSecond.cpu, unit: 'tokens/s' });
    records.push({ name: row, implementation, backend: backend.info.name, metric: 'decode (wall clock)', value: result.tokensPerSecond.wall, unit: 'tokens/s' });
    records.push({ name: row, implementation, backend: backend.info.name, metric: 'kv bytes held', value: result.kvBytes, unit: 'B' });
    if (result.transientBytes > 0) records.push({ name: row, implementation, backend: backend.info.name, metric: 'transient K/V bytes per step', value: result.transientBytes, unit: 'B' });
    console.log(
      `${row.padEnd(18)} ${implementation.padEnd(13)} ${result.tokensPerSecond.cpu.toFixed(2).padStart(8)} tokens/s (wall ${result.tokensPerSecond.wall.toFixed(2).padStart(7)})   kv held ${mib(result.kvBytes).padStart(9)}` +
        (result.transientBytes > 0 ? `   + ${mib(result.transientBytes)} expanded per step` : ''),
    );
  }
}

console.log('\nprefill / chunk calls (S new tokens, T keys): both orders, and the order the cost rule picks');
for (const [S, T] of [
  [64, 64],
  [256, 256],
  [16, 1024],
  [256, 1024],
  [4, 4096],
  [64, 4096],
] as const) {
  const times: Record<MLAOrder, number> = { naive: await timeCall(S, T, 'naive'), absorbed: await timeCall(S, T, 'absorbed') };
  const picked = chooseOrder(config, { queries: S, keys: T });
  const faster: MLAOrder = times.naive < times.absorbed ? 'naive' : 'absorbed';
  const costs = orderCosts(config, { queries: S, keys: T });
  for (const order of ['naive', 'absorbed'] as const) {
    records.push({ name: `call S=${S} T=${T}`, implementation: `mla-${order}`, backend: backend.info.name, metric: 'time', value: times[order], unit: 'ms' });
  }
  console.log(
    `S ${String(S).padStart(4)}  T ${String(T).padStart(5)}   naive ${times.naive.toFixed(1).padStart(8)} ms   absorbed ${times.absorbed.toFixed(1).padStart(8)} ms (CPU)   ` +
      `rule: ${picked.padEnd(8)} (cost ratio naive/absorbed ${(costs.naive.cost / costs.absorbed.cost).toFixed(2)})   faster: ${faster}${picked === faster ? '' : '   <- rule disagrees'}`,
  );
}

const ratio = await elementVsMacCost();
records.push({ name: 'element vs MAC cost', implementation: 'backend', backend: backend.info.name, metric: 'ratio', value: ratio, unit: 'MACs per element' });
console.log(`\nan f32 element written and read back costs ${ratio.toFixed(1)} multiply–adds on ${backend.info.name} (ELEMENT_COST_MACS = ${ELEMENT_COST_MACS})`);

mla.dispose();
mha.dispose();
await backend.dispose();
const out = resolve(dirname(fileURLToPath(import.meta.url)), '../../../bench-results/attention-mla-decode.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify(records, null, 2)}\n`);
console.log(`records: ${out}`);

// ---------------------------------------------------------------------------------------------

interface DecodeResult {
  /** Tokens per second of CPU time, and of wall-clock time. */
  readonly tokensPerSecond: { readonly cpu: number; readonly wall: number };
  readonly kvBytes: number;
  readonly transientBytes: number;
}

/** Milliseconds of `work`: CPU time of this process (user + system) and wall-clock time. */
async function measure(work: () => Promise<void>): Promise<{ cpu: number; wall: number }> {
  const cpuStart = process.cpuUsage();
  const wallStart = performance.now();
  await work();
  const wall = performance.now() - wallStart;
  const { user, system } = process.cpuUsage(cpuStart);
  return { cpu: (user + system) / 1000, wall };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length / 2;
  return s.length % 2 === 1 ? (s[Math.floor(mid)] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/**
 * Decode steps per second, from the median step time: one warm-up step, then steps until
 * `minSeconds` have passed (at least 3, or 1 when a step alone outlasts the budget; at most
 * 50). Every backend here runs on this one thread, so CPU time is the time the step needs;
 * wall time also counts what other jobs on the machine take from it.
 */
async function timeSteps(step: () => Promise<void>): Promise<{ cpu: number; wall: number }> {
  const budget = minSeconds * 1000;
  const warmUp = await measure(step);
  const cpu: number[] = [];
  const wall: number[] = [];
  let spent = 0;
  while (cpu.length < (warmUp.wall > budget ? 1 : 3) || (spent < budget && cpu.length < 50)) {
    const m = await measure(step);
    cpu.push(m.cpu);
    wall.push(m.wall);
    spent += m.wall;
  }
  return { cpu: 1000 / median(cpu), wall: 1000 / median(wall) };
}

async function decodeMLA(T: number, order: MLAOrder): Promise<DecodeResult> {
  const { kvLoraRank: C, qkRopeHeadDim: dr, nHeads: H, qkHeadDim, vHeadDim: dv } = config;
  const room = T + 64; // the context plus the ≤ 51 measured steps, allocated up front
  using cache = new MLALatentCache(backend, { batchSize: 1, kvLoraRank: C, ropeDim: dr, initialCapacity: room, maxCapacity: room });
  {
    using filler = tensor(backend, uniform(T * (C + dr)), [1, T, 1, C + dr]); // a context of T cached rows
    await cache.updateAndFetch(filler, null);
  }
  using x = tensor(backend, uniform(config.dim), [1, 1, config.dim]);
  const tokensPerSecond = await timeSteps(async () => {
    (await mla.forward(x, { cache, order })).dispose();
  });
  return { tokensPerSecond, kvBytes: T * (C + dr) * 4, transientBytes: order === 'naive' ? T * H * (qkHeadDim + dv) * 4 : 0 };
}

/** Multi-head attention with MLA's head dims (K dn+dr = 48, V dv = 32, 16 heads) over a ContiguousKVCache. */
function createMHA(b: Backend): { step: (x: Tensor, cache: ContiguousKVCache) => Promise<Tensor>; dispose: () => void } {
  const { dim, nHeads: H, qkHeadDim: D, vHeadDim: Dv } = config;
  const w = (out: number, inp: number): Tensor => tensor(b, uniform(out * inp).map((v) => v / Math.sqrt(inp)), [out, inp]);
  const wq = w(H * D, dim);
  const wk = w(H * D, dim);
  const wv = w(H * Dv, dim);
  const wo = w(dim, H * Dv);
  const invFreq = tensor(b, ropeInvFreq({ dim: D, yarn: config.yarn }), [D / 2]);
  return {
    async step(x, cache) {
      const S = x.shape[1] ?? 1;
      using positions = tensor(b, Int32Array.from({ length: S }, (_, i) => (cache.lengths[0] ?? 0) + i), [S], { dtype: 'i32' });
      using q0 = await linear(x, wq); // [1, S, H·D]
      using k0 = await linear(x, wk);
      using v0 = await linear(x, wv); // [1, S, H·Dv]
      using q1 = reshape(q0, [1, S, H, D]);
      using k1 = reshape(k0, [1, S, H, D]);
      using v = reshape(v0, [1, S, H, Dv]);
      using q = await rope(q1, positions, invFreq, { layout: 'halfsplit' });
      using k = await rope(k1, positions, invFreq, { layout: 'halfsplit' });
      const view = await cache.updateAndFetch(k, v);
      const { out } = await attention(q, view.keys, view.values, { kvLengths: view.lengths });
      using o = out;
      using flat = reshape(o, [1, S, H * Dv]);
      return await linear(flat, wo);
    },
    dispose() {
      for (const t of [wq, wk, wv, wo, invFreq]) t.dispose();
    },
  };
}

async function decodeMHA(T: number): Promise<DecodeResult> {
  const { nHeads: H, qkHeadDim: D, vHeadDim: Dv } = config;
  using cache = new ContiguousKVCache(backend, { batchSize: 1, kvHeads: H, keyDim: D, valueDim: Dv, initialCapacity: T + 1, maxCapacity: T + 1 });
  {
    using k = tensor(backend, uniform(T * H * D), [1, T, H, D]);
    using v = tensor(backend, uniform(T * H * Dv), [1, T, H, Dv]);
    await cache.updateAndFetch(k, v); // a context of T cached tokens
  }
  using x = tensor(backend, uniform(config.dim), [1, 1, config.dim]);
  const tokensPerSecond = await timeSteps(async () => {
    (await mha.step(x, cache)).dispose();
    cache.truncate(T); // back to T: every step decodes at the same context
  });
  return { tokensPerSecond, kvBytes: T * H * (D + Dv) * 4, transientBytes: 0 };
}

/** CPU milliseconds of one attend call of S queries over T keys (T − S random rows, then the S new ones). */
async function timeCall(S: number, T: number, order: MLAOrder): Promise<number> {
  const { kvLoraRank: C, qkRopeHeadDim: dr } = config;
  using x = tensor(backend, uniform(S * config.dim), [1, S, config.dim]);
  using projection = await mla.project(x, T - S);
  using past = tensor(backend, uniform((T - S) * (C + dr)), [1, T - S, 1, C + dr]);
  using rows = await concat([past, projection.kvRows], 1);
  const view: CacheView = { keys: rows, values: null, valueDim: C, rowMap: null, lengths: [T] };
  const call = async (): Promise<void> => (await mla.attend(projection, view, { order })).y.dispose();
  await call(); // warm-up
  return (await measure(call)).cpu;
}

/** Time per f32 element of a copy (concat: each element read and written once) over time per MAC of a linear. */
async function elementVsMacCost(): Promise<number> {
  const rows = 2048;
  const width = 512;
  using x = tensor(backend, uniform(rows * width), [rows, width]);
  using w = tensor(backend, uniform(width * width), [width, width]);
  const product = async (): Promise<void> => (await linear(x, w)).dispose();
  const copy = async (): Promise<void> => (await concat([x, x], 1)).dispose();
  await product();
  await copy();
  const samples = async (work: () => Promise<void>): Promise<number[]> => {
    const ms: number[] = [];
    for (let i = 0; i < 3; i++) ms.push((await measure(work)).cpu);
    return ms;
  };
  const perMac = median(await samples(product)) / (rows * width * width);
  const perElement = median(await samples(copy)) / (2 * rows * width);
  return perElement / perMac;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
