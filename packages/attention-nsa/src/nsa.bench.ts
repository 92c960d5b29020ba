// pnpm bench (this package): NSA against dense GQA attention (the core's `attention`) on the
// same backend, at 4K…64K tokens of context, for a decode step and for a prefill chunk.
//
//   NSA_BENCH_CONTEXTS=4096,8192  NSA_BENCH_REPS=5  NSA_BENCH_CHUNK=16  NSA_BENCH_BACKEND=cpu
//   NSA_BENCH_KV_HEADS=4 (the paper's 64 query heads)  NSA_BENCH_BATCH=1  NSA_BENCH_KINDS=decode,prefill
//
// On a WebGPU backend a decode step is also timed the way a GPU is used: 100 steps queued back
// to back, ended by one `onSubmittedWorkDone` (the `gpu queued` rows); the per-call rows
// include a readback each.
//
// The paper's configuration (l 32, d 16, l′ 64, n 16 incl. 1 initial + 2 local, w 512,
// d_k 192, d_v 128, GQA groups of 16 query heads) scaled to one kv head — a quarter of the
// paper's 4 — so a 64K cache fits a 2-core box. A decode step is one query attending over a
// cache view (raw K/V plus the compressed blocks the cache maintains); φ's upkeep, one block
// of l tokens every d tokens, is timed on its own and amortised. Prefill is a chunk of C
// queries at the end of the context (the unit a chunked prefill repeats), reported per token.
// Records go to bench-results/attention-nsa.json at the repository root.

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attention } from '@attnkit/attention-mha';
import { BACKEND_PREFERENCE, type BackendName, type Tensor, concat, createBackend, isWebGpuHost, reshape, tensor } from '@attnkit/tensor-core';
import { type QueuedTiming, queuedSteps } from '@attnkit/bench/queued';
import { SeededRandom } from '@attnkit/testkit';
import { compressBlocks } from './compress.js';
import { keysReadPerStep } from './config.js';
import { NativeSparseAttention } from './layer.js';
import { type CompressedKV, nativeSparseAttention } from './nsa.js';
import { selectedAttention } from './selection.js';

interface BenchRecord {
  readonly name: string;
  readonly implementation: string;
  readonly backend: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
}

const contexts = (process.env.NSA_BENCH_CONTEXTS ?? '4096,8192,16384,32768,65536').split(',').map(Number);
const reps = Number(process.env.NSA_BENCH_REPS ?? 5);
const chunk = Number(process.env.NSA_BENCH_CHUNK ?? 16);
const backendName: BackendName = BACKEND_PREFERENCE.find((n) => n === (process.env.NSA_BENCH_BACKEND ?? 'cpu')) ?? 'cpu';

const kinds = (process.env.NSA_BENCH_KINDS ?? 'decode,prefill').split(',');
const kvHeads = Number(process.env.NSA_BENCH_KV_HEADS ?? 1);
const batch = Number(process.env.NSA_BENCH_BATCH ?? 1);
const HEADS = { nHeads: 16 * kvHeads, nKvHeads: kvHeads, headDim: 192, vHeadDim: 128, gateDim: 256 } as const;
/** Steps queued per trial of the GPU throughput timing. */
const QUEUED_STEPS = 100;

async function main(): Promise<void> {
  const { backend } = await createBackend({ prefer: backendName });
  const rng = new SeededRandom(2025);
  const { nHeads: Hq, nKvHeads: Hkv, headDim: D, vHeadDim: Dv, gateDim: X } = HEADS;
  const upload = (shape: readonly number[], scale = 1): Tensor => tensor(backend, rng.normalArray(shape.reduce((a, b) => a * b, 1), scale), shape);
  using gateWeight = upload([3 * Hq, X], 0.05);
  using gateBias = upload([3 * Hq], 0.1);
  const nsa = new NativeSparseAttention(HEADS, { gateWeight, gateBias });
  const c = nsa.config;
  const records: BenchRecord[] = [];
  const record = (name: string, implementation: string, metric: string, value: number, unit: string): void => {
    records.push({ name, implementation, backend: backend.info.name, metric, value, unit });
  };

  console.log(`attention-nsa bench on ${backend.info.name} (${backend.info.adapter}), node ${process.version}`);
  console.log(`B ${batch}, Hq ${Hq}, Hkv ${Hkv}, D ${D}, Dv ${Dv}; l ${c.cmpBlock}, d ${c.cmpStride}, l′ ${c.slcBlock}, n ${c.nSelected} (${c.nInit} initial + ${c.nLocal} local), w ${c.window}; ${reps} reps (median), prefill chunk ${chunk}\n`);

  // φ's upkeep: the cache calls it for one block of l tokens every d appended tokens.
  {
    using kBlock = upload([1, c.cmpBlock, Hkv, D]);
    using vBlock = upload([1, c.cmpBlock, Hkv, Dv]);
    const t = await median(reps * 4, async () => {
      const { keys, values } = await nsa.compress({ keys: kBlock, values: vBlock, sequences: [0], blockIndices: [0] });
      keys.dispose();
      values.dispose();
    });
    record('compress one block', 'nsa', 'cpu time', t.cpu, 'ms');
    record('compress (amortised)', 'nsa', 'cpu time', t.cpu / c.cmpStride, 'ms/token');
  }

  for (const T of contexts) {
    const B = batch;
    // B sequences holding the same history: generating B × T rows of normals on the host would
    // dominate the run, and the step's cost does not depend on the numbers
    const history = async (dim: number): Promise<Tensor> => {
      using one = upload([1, T, Hkv, dim]);
      return B === 1 ? reshape(one, one.shape) : await concat(new Array<Tensor>(B).fill(one), 0);
    };
    using k = await history(D);
    using v = await history(Dv);
    // what the cache holds at T tokens: every complete block, compressed once, in the backend's
    // own storage as an NSACache keeps them (on the CPU a kernel's output is a JavaScript array
    // that SIMD kernels copy in per call, where a cache's storage is read in place)
    const held = async (x: Tensor): Promise<Tensor> => {
      using computed = await compressBlocks(x, { kind: 'mean', pe: null, mlp: null }, c);
      return tensor(backend, await computed.data(), computed.shape);
    };
    using cKeys = await held(k);
    using cValues = await held(v);
    const keys = keysReadPerStep(T, c);
    record(`decode T=${T}`, 'nsa', 'keys read', keys.total, 'keys/kv head/step');
    record(`decode T=${T}`, 'dense-gqa', 'keys read', keys.dense, 'keys/kv head/step');

    for (const [kind, S] of ([['decode', 1], ['prefill', chunk]] as const).filter(([name]) => kinds.includes(name))) {
      using q = upload([B, S, Hq, D]);
      using x = upload([B, S, X]);
      const runNSA = async (): Promise<void> => {
        const { out } = await nativeSparseAttention(q, k, v, x, c, nsa.weights, { compressed: { keys: cKeys, values: cValues } });
        await out.data();
        out.dispose();
      };
      const runDense = async (): Promise<void> => {
        const { out } = await attention(q, k, v, { scale: c.scale });
        await out.data();
        out.dispose();
      };
      // Alternating the two, so both see the same background load; dense at long context is
      // the slow side (seconds per call), so it gets fewer repetitions there.
      const [nsaMs, denseMs] = await medians(reps, kind === 'prefill' && T > 16384 ? 1 : reps, runNSA, runDense);
      const unit = kind === 'decode' ? 'ms/step' : 'ms/token';
      for (const clock of ['cpu', 'wall'] as const) {
        record(`${kind} T=${T}`, 'nsa', `${clock} time`, nsaMs[clock] / S, unit);
        record(`${kind} T=${T}`, 'dense-gqa', `${clock} time`, denseMs[clock] / S, unit);
        record(`${kind} T=${T}`, 'nsa', `speed-up (${clock})`, denseMs[clock] / nsaMs[clock], '×');
      }
      const device = isWebGpuHost(backend) ? backend.webgpu.device : null;
      if (kind === 'decode' && device) {
        // per step: until the last call returned (host: validation, encoding, submission) and
        // until the GPU finished them all; the medians of the trials after a warm-up trial
        const queued = (step: () => Promise<Tensor>): Promise<QueuedTiming> =>
          queuedSteps(device.queue, async () => (await step()).dispose(), { steps: QUEUED_STEPS, trials: reps });
        const nsaTimes = await queued(async () => (await nativeSparseAttention(q, k, v, x, c, nsa.weights, { compressed: { keys: cKeys, values: cValues } })).out);
        const denseTimes = await queued(async () => (await attention(q, k, v, { scale: c.scale })).out);
        const [nsaQueued, denseQueued] = [nsaTimes.done, denseTimes.done];
        record(`${kind} T=${T}`, 'nsa', 'gpu queued', nsaQueued, 'ms/step');
        record(`${kind} T=${T}`, 'dense-gqa', 'gpu queued', denseQueued, 'ms/step');
        record(`${kind} T=${T}`, 'nsa', 'host time (queued)', nsaTimes.host, 'ms/step');
        record(`${kind} T=${T}`, 'dense-gqa', 'host time (queued)', denseTimes.host, 'ms/step');
        record(`${kind} T=${T}`, 'nsa', 'speed-up (gpu queued)', denseQueued / nsaQueued, '×');
        const bytes = B * T * Hkv * (D + Dv) * 4;
        record(`${kind} T=${T}`, 'dense-gqa', 'K/V bandwidth (gpu queued)', bytes / denseQueued / 1e6, 'GB/s');
      }
      if (kind === 'decode') {
        // the fused step (where the backend has one) against the same step composed of
        // tensor-core ops and the attention core, alternating
        const runComposed = async (): Promise<void> => {
          const { out } = await nativeSparseAttention(q, k, v, x, c, nsa.weights, { compressed: { keys: cKeys, values: cValues }, implementation: 'composed' });
          await out.data();
          out.dispose();
        };
        const [fusedMs, composedMs] = await medians(reps, reps, runNSA, runComposed);
        for (const clock of ['cpu', 'wall'] as const) {
          record(`${kind} T=${T}`, 'nsa (composed)', `${clock} time`, composedMs[clock], unit);
          record(`${kind} T=${T}`, 'nsa', `fused speed-up over composed (${clock})`, composedMs[clock] / fusedMs[clock], '×');
        }
        // Where a decode step's CPU time goes: the two branches the attention core runs; the
        // rest is this package's own work (compression branch, top-n, gates).
        const [selected, window] = await coreBranches(nsa, q, k, v, x, { keys: cKeys, values: cValues });
        record(`decode T=${T}`, 'core: selected branch', 'cpu time', selected.cpu, 'ms/step');
        record(`decode T=${T}`, 'core: window branch', 'cpu time', window.cpu, 'ms/step');
      }
    }
  }


  await backend.dispose();
  printTable(records);
  const root = join(dirname(fileURLToPath(import.meta.url)), '../../..');
  const file = join(root, 'bench-results', 'attention-nsa.json');
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify({ package: '@attnkit/attention-nsa', date: new Date().toISOString(), node: process.version, config: { ...HEADS, ...c }, records }, null, 2)}\n`);
  console.log(`\nrecords: ${file}`);
}

async function coreBranches(nsa: NativeSparseAttention, q: Tensor, k: Tensor, v: Tensor, x: Tensor, compressed: CompressedKV): Promise<[Timing, Timing]> {
  const c = nsa.config;
  const { out, stages } = await nativeSparseAttention(q, k, v, x, c, nsa.weights, { compressed, returnStages: true });
  out.dispose();
  if (!stages) throw new Error('nativeSparseAttention returned no stages');
  using s = stages;
  return await medians(
    reps,
    reps,
    async () => (await selectedAttention(q, k, v, s.selectedBlocks, c, {})).out.dispose(),
    async () => (await attention(q, k, v, { window: c.window, scale: c.scale })).out.dispose(),
  );
}

/** Wall and process-CPU milliseconds. On this shared 2-core box wall time swings with the neighbours' load; CPU time much less. */
interface Timing {
  readonly wall: number;
  readonly cpu: number;
}

async function median(n: number, f: () => Promise<void>): Promise<Timing> {
  const [t] = await medians(n, 0, f, () => Promise.resolve());
  return t;
}

/**
 * Median timings of nA runs of a and nB of b, interleaved, after warm-up runs: V8 needs two or
 * three calls before the hot loops reach its optimising tier (the first decode steps run 5–10×
 * slower), so each side is warmed as often as it is measured, up to three times.
 */
async function medians(nA: number, nB: number, a: () => Promise<void>, b: () => Promise<void>): Promise<[Timing, Timing]> {
  for (let i = 0; i < Math.min(3, nA); i++) await a();
  for (let i = 0; i < Math.min(3, nB); i++) await b();
  const ta: Timing[] = [];
  const tb: Timing[] = [];
  for (let i = 0; i < Math.max(nA, nB); i++) {
    if (i < nA) ta.push(await timed(a));
    if (i < nB) tb.push(await timed(b));
  }
  return [mid(ta), mid(tb)];
}

async function timed(f: () => Promise<void>): Promise<Timing> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1000 };
}

function mid(times: readonly Timing[]): Timing {
  const pick = (xs: number[]): number => {
    xs.sort((x, y) => x - y);
    return xs.length === 0 ? NaN : (xs[Math.floor(xs.length / 2)] as number);
  };
  return { wall: pick(times.map((t) => t.wall)), cpu: pick(times.map((t) => t.cpu)) };
}

function printTable(records: readonly BenchRecord[]): void {
  const rows = records.map((r) => [r.name, r.implementation, r.metric, formatValue(r.value), r.unit]);
  const header = ['case', 'implementation', 'metric', 'value', 'unit'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] as string).length)));
  const line = (cells: readonly string[]): string => cells.map((cell, i) => (i === 3 ? cell.padStart(widths[i] as number) : cell.padEnd(widths[i] as number))).join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

function formatValue(v: number): string {
  return Number.isInteger(v) ? String(v) : v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

await main();
