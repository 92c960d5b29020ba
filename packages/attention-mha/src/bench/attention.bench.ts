// pnpm --filter @attnkit/attention-mha bench [-- --quick] [-- --backend cpu,gpujs-webasm]
//   [-- --prefill-n 2048 --prefill-d 64,128 --decode-t 65536 --decode mha]   (a subset)
//   [-- --duel-rounds 15]
//   ATTNKIT_ORT_THREADS=2 gives onnxruntime-node two intra-op threads (default 1)
//
// Causal prefill at N = 512, 2048, 8192 (d = 64 and 128, 8 heads) and single-token decode at
// T = 1K … 64K (MHA 8 × 128 and GQA 32 query / 8 kv heads × 128), for attnkit on every backend
// available, beside onnxruntime-node's MultiHeadAttention / GroupQueryAttention contrib
// operators and a tfjs-backend-wasm composition, measured in the same run.
//
// Conventions: prefill GFLOP/s counts 2·N²·d per head (the multiply-adds of QKᵀ and PV under a
// causal mask, which skips half of each); decode is tokens/s for batch 1, and GB/s of K and V
// read (2·T·Hkv·D·4 bytes per token). Each figure is the median of ≥ 3 timed runs after a
// warm-up run (one run when a single run takes over 20 s), both in wall time and per second of
// this process's CPU time (the machine may be shared: the load average is printed); the summary
// gives attnkit's ratio to each peer measured in the same run. Prefill on the cpu backend is also
// measured against ORT MultiHeadAttention on as many threads as attnkit's (the issue-12 goal), and
// in a duel: the two alternate run by run, so a change in the machine's load hits both, and the
// median of the per-round ratios is printed with the load average before and after.
// Records: {name, implementation, backend, metric, value, unit} (the @attnkit/bench format),
// written to bench-results/attention-mha.json at the repository root.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { benchArgs } from '@attnkit/bench/cli';
import { type Backend, CpuBackend, type Tensor, tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { attention } from '../attention.js';
import { measureBandwidth } from './bandwidth.bench.js';
import { type AttentionShape, ORT_THREADS, type PeerRun, initTfjsWasm, ortGroupQueryAttention, ortMultiHeadAttention, tfjsComposition } from './peers.bench.js';

interface BenchRecord {
  readonly name: string;
  readonly implementation: string;
  readonly backend: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  readonly ms?: number;
  /** The same work per second of this process's CPU time (all threads). */
  readonly perCpuSecond?: number;
  readonly note?: string;
}

const args = benchArgs('pnpm --filter @attnkit/attention-mha bench --', {
  quick: { type: 'boolean', help: 'fewer sizes (prefill N 512,2048; decode T 1024,4096)' },
  backend: { type: 'string', help: 'measure only these backends (comma-separated; sets ATTNKIT_BACKENDS)' },
  'time-limit': { type: 'string', default: '150', help: 'skip a measurement predicted to run longer than this (seconds, one run)' },
  'prefill-n': { type: 'string', help: 'prefill sequence lengths (default 512,2048,8192)' },
  'prefill-d': { type: 'string', default: '64,128', help: 'prefill head dims' },
  'decode-t': { type: 'string', help: 'decode context lengths (default 1024,4096,16384,65536)' },
  decode: { type: 'string', help: "decode configs whose label starts with this ('mha', 'gqa')" },
  'duel-rounds': { type: 'string', default: '15', help: 'rounds of the cpu prefill duel with ORT, run by run (0: none)' },
});
const quick = args.flag('quick');
const backendFlag = args.string('backend');
if (backendFlag) process.env.ATTNKIT_BACKENDS = backendFlag;
/** A measurement predicted to take longer than this (one run, seconds) is skipped and said so. */
const LIMIT_S = args.positive('time-limit') ?? 150;
const PREFILL_N = args.integers('prefill-n') ?? (quick ? [512, 2048] : [512, 2048, 8192]);
const PREFILL_D = args.integers('prefill-d') ?? [64, 128];
const PREFILL_HEADS = 8;
const DECODE_T = args.integers('decode-t') ?? (quick ? [1024, 4096] : [1024, 4096, 16384, 65536]);
const decodeFilter = args.string('decode');
const DECODE_CONFIGS = [
  { label: 'MHA 8×128', Hq: 8, Hkv: 8, D: 128 },
  { label: 'GQA 32q/8kv×128', Hq: 32, Hkv: 8, D: 128 },
].filter((c) => decodeFilter === undefined || c.label.toLowerCase().startsWith(decodeFilter.toLowerCase()));

const DUEL_ROUNDS = args.count('duel-rounds') ?? 15;
const records: BenchRecord[] = [];
const skipped: string[] = [];

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;

/** Median wall and CPU time of `run` in ms: one warm-up, then runs until 1 s or 10 runs (1 run past 20 s). */
async function measure(run: () => Promise<void>): Promise<{ ms: number; cpuMs: number; runs: number }> {
  let t0 = performance.now();
  let c0 = cpuMs();
  await run();
  const first = performance.now() - t0;
  if (first > 20_000) return { ms: first, cpuMs: cpuMs() - c0, runs: 1 };
  const times: number[] = [];
  const cpu: number[] = [];
  const started = performance.now();
  while (times.length < 3 || (times.length < 10 && performance.now() - started < 1000)) {
    t0 = performance.now();
    c0 = cpuMs();
    await run();
    times.push(performance.now() - t0);
    cpu.push(cpuMs() - c0);
  }
  return { ms: median(times), cpuMs: median(cpu), runs: times.length };
}

/** Time of the last run per implementation, to predict (and skip) the next size. */
const lastCost = new Map<string, { ms: number; work: number }>();

type Metric = (ms: number) => Omit<BenchRecord, 'name' | 'implementation' | 'backend'>;

async function bench(name: string, implementation: string, backendName: string, work: number, make: () => Promise<PeerRun>, metric: Metric): Promise<void> {
  const key = `${implementation}@${backendName}`;
  const prev = lastCost.get(key);
  if (prev && (prev.ms * work) / prev.work > LIMIT_S * 1000) {
    const predicted = (prev.ms * work) / prev.work / 1000;
    skipped.push(`${name}: ${implementation} on ${backendName} — predicted ${predicted.toFixed(0)} s per run > ${LIMIT_S} s`);
    return;
  }
  let runner: PeerRun | null = null;
  try {
    runner = await make();
    const { ms, cpuMs: cpu, runs } = await measure(() => (runner ? runner.run() : Promise.resolve()));
    lastCost.set(key, { ms, work });
    const r = { name, implementation, backend: backendName, ...metric(ms), ms, perCpuSecond: metric(cpu).value };
    records.push(r);
    console.log(
      `${name.padEnd(34)} ${implementation.padEnd(32)} ${backendName.padEnd(28)} ${r.value.toFixed(2).padStart(9)} ${r.unit.padEnd(8)} ${ms.toFixed(1).padStart(10)} ms ${r.perCpuSecond.toFixed(2).padStart(9)} per CPU-s (${runs} runs)`,
    );
  } catch (error) {
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    skipped.push(`${name}: ${implementation} on ${backendName} — failed: ${reason}`);
    console.log(`${name.padEnd(34)} ${implementation.padEnd(32)} ${backendName.padEnd(28)} failed: ${reason}`);
  } finally {
    await runner?.dispose();
  }
}

function randomTensor(backend: Backend, shape: number[]): Tensor {
  const n = shape.reduce((a, x) => a * x, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
  return tensor(backend, a, shape);
}

/** attnkit's attention on one backend: q [1, S, Hq, D], k/v [1, T, Hkv, D] token-major. */
function attnkitRun(backend: Backend, s: AttentionShape, implementation: 'auto' | 'composed', onDispatch: (d: string) => void): () => Promise<PeerRun> {
  return () => {
    const q = randomTensor(backend, [s.B, s.S, s.Hq, s.D]);
    const k = randomTensor(backend, [s.B, s.T, s.Hkv, s.D]);
    const v = randomTensor(backend, [s.B, s.T, s.Hkv, s.D]);
    return Promise.resolve({
      run: async () => {
        const { out, dispatch } = await attention(q, k, v, { mask: s.causal ? 'causal' : 'none', implementation });
        await out.data();
        out.dispose();
        onDispatch(dispatch.implementation);
      },
      dispose: () => {
        [q, k, v].forEach((t) => t.dispose());
        return Promise.resolve();
      },
    });
  };
}

const loadAtStart = loadavg();
const { available, skipped: unavailable } = await availableBackends();
const tfjsInfo = await initTfjsWasm();
console.log(`node ${process.version}; attnkit backends: ${available.map((b) => b.name).join(', ')}; onnxruntime-node (${ORT_THREADS} thread${ORT_THREADS > 1 ? 's' : ''}); ${tfjsInfo}`);
console.log(`${cpus()[0]?.model ?? 'cpu'} × ${cpus().length}; load average ${loadAtStart.map((x) => x.toFixed(2)).join(' ')}`);
for (const u of unavailable) console.log(`  backend not available: ${u.name} (${u.reason})`);
const backends: { name: string; backend: Backend }[] = [];
const plainCpu = new CpuBackend({ simd: false });
for (const b of available) backends.push({ name: b.name, backend: await b.create() });
// where the engine has relaxed SIMD (the bench script passes --experimental-wasm-relaxed-simd to
// Node 20), `auto` runs the FMA tile; the mul + add tile, what Node 20 runs without the flag, too
const cpuDefault = backends.find((b) => b.name === 'cpu')?.backend;
const mulAddCpu = cpuDefault instanceof CpuBackend && cpuDefault.wasm?.relaxedSimd ? new CpuBackend({ fma: false }) : null;
console.log(`cpu backend: ${cpuDefault?.info.adapter ?? 'not measured'}`);
const cpuThreads = cpuDefault instanceof CpuBackend ? (cpuDefault.wasmThreads?.size ?? 1) : 1;

console.log('\n— causal prefill (GFLOP/s, 2·N²·d per head, 8 heads, batch 1) —');
for (const D of PREFILL_D) {
  for (const N of PREFILL_N) {
    const s: AttentionShape = { B: 1, S: N, T: N, Hq: PREFILL_HEADS, Hkv: PREFILL_HEADS, D, causal: true };
    const name = `prefill N=${N} d=${D} H=${PREFILL_HEADS}`;
    const flops = 2 * N * N * D * PREFILL_HEADS;
    const metric = (ms: number): Omit<BenchRecord, 'name' | 'implementation' | 'backend'> => ({ metric: 'throughput', value: flops / ms / 1e6, unit: 'GFLOP/s' });
    for (const { name: bname, backend } of backends) {
      let ran = 'attnkit';
      await bench(name, `attnkit auto`, bname, flops, attnkitRun(backend, s, 'auto', (d) => (ran = d)), (ms) => ({ ...metric(ms), note: ran }));
      if (bname === 'cpu') {
        await bench(name, 'attnkit composed', bname, flops, attnkitRun(backend, s, 'composed', () => undefined), metric);
        if (mulAddCpu) await bench(name, 'attnkit auto, mul+add', 'cpu fma: false', flops, attnkitRun(mulAddCpu, s, 'auto', () => undefined), metric);
        // the TypeScript kernel (cpu-flash) the SIMD one replaced, same run
        await bench(name, 'attnkit auto, simd off', 'cpu simd: false', flops, attnkitRun(plainCpu, s, 'auto', () => undefined), metric);
      }
    }
    await bench(name, 'ORT MultiHeadAttention', 'onnxruntime-node cpu', flops, () => ortMultiHeadAttention(s), metric);
    // the same operator on as many threads as attnkit's CPU backend uses
    if (cpuThreads > 1 && cpuThreads !== ORT_THREADS) {
      await bench(name, `ORT MultiHeadAttention ×${cpuThreads}`, 'onnxruntime-node cpu', flops, () => ortMultiHeadAttention(s, cpuThreads), metric);
    }
    await bench(name, 'ORT GroupQueryAttention', 'onnxruntime-node cpu', flops, () => ortGroupQueryAttention(s), metric);
    await bench(name, 'matmul+softmax+matmul', 'tfjs-backend-wasm', flops, () => tfjsComposition(s), metric);
    if (cpuDefault && DUEL_ROUNDS > 0) await duel(name, flops, attnkitRun(cpuDefault, s, 'auto', () => undefined), () => ortMultiHeadAttention(s, cpuThreads));
  }
}

if (cpuDefault instanceof CpuBackend && DECODE_T.length > 0) {
  console.log('\n— memory bandwidth of this machine (what decode is measured against) —');
  for (const { label, gbPerS } of await measureBandwidth(cpuDefault)) {
    records.push({ name: 'memory bandwidth', implementation: label, backend: 'cpu', metric: 'bandwidth', value: gbPerS, unit: 'GB/s' });
    console.log(`${'memory bandwidth'.padEnd(34)} ${label.padEnd(61)} ${gbPerS.toFixed(2).padStart(9)} GB/s`);
  }
}

console.log('\n— decode, one new token after T − 1 cached (tokens/s, batch 1) —');
for (const c of DECODE_CONFIGS) {
  for (const T of DECODE_T) {
    const s: AttentionShape = { B: 1, S: 1, T, Hq: c.Hq, Hkv: c.Hkv, D: c.D, causal: true };
    const name = `decode ${c.label} T=${T}`;
    const work = T * c.Hkv * c.D;
    const kvBytes = 2 * T * c.Hkv * c.D * 4;
    const metric = (ms: number): Omit<BenchRecord, 'name' | 'implementation' | 'backend'> => ({ metric: 'throughput', value: 1000 / ms, unit: 'tok/s' });
    const bandwidth = (ms: number): Omit<BenchRecord, 'name' | 'implementation' | 'backend'> => ({ metric: 'K/V read', value: kvBytes / ms / 1e6, unit: 'GB/s' });
    for (const { name: bname, backend } of backends) {
      let ran = 'attnkit';
      await bench(name, 'attnkit auto', bname, work, attnkitRun(backend, s, 'auto', (d) => (ran = d)), (ms) => ({ ...metric(ms), note: ran }));
      const last = records.at(-1);
      if (last?.implementation === 'attnkit auto' && last.name === name && last.ms !== undefined) {
        const bw = { name, implementation: 'attnkit auto', backend: bname, ...bandwidth(last.ms), ms: last.ms, perCpuSecond: last.perCpuSecond === undefined ? Number.NaN : (kvBytes / 1e9) * last.perCpuSecond };
        records.push(bw);
        console.log(`${name.padEnd(34)} ${'attnkit auto (K/V bytes)'.padEnd(32)} ${bname.padEnd(28)} ${bw.value.toFixed(2).padStart(9)} GB/s ${''.padStart(14)} ${bw.perCpuSecond.toFixed(2).padStart(9)} GB per CPU-s`);
      }
      if (bname === 'cpu') {
        if (mulAddCpu) await bench(name, 'attnkit auto, mul+add', 'cpu fma: false', work, attnkitRun(mulAddCpu, s, 'auto', () => undefined), metric);
        await bench(name, 'attnkit auto, simd off', 'cpu simd: false', work, attnkitRun(plainCpu, s, 'auto', () => undefined), metric);
      }
    }
    if (c.Hq === c.Hkv) await bench(name, 'ORT MultiHeadAttention', 'onnxruntime-node cpu', work, () => ortMultiHeadAttention(s), metric);
    await bench(name, 'ORT GroupQueryAttention', 'onnxruntime-node cpu', work, () => ortGroupQueryAttention(s), metric);
    await bench(name, 'matmul+softmax+matmul', 'tfjs-backend-wasm', work, () => tfjsComposition(s), metric);
  }
}

for (const { backend } of backends) await backend.dispose();
await plainCpu.dispose();
await mulAddCpu?.dispose();
printRatios();
console.log(`load average at start ${loadAtStart.map((x) => x.toFixed(2)).join(' ')}, at end ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
if (skipped.length > 0) {
  console.log('\nskipped:');
  for (const s of skipped) console.log(`  ${s}`);
}
const root = findRoot(process.cwd());
const outDir = join(root, 'bench-results');
mkdirSync(outDir, { recursive: true });
writeFileSync(
  join(outDir, 'attention-mha.json'),
  JSON.stringify({ date: new Date().toISOString(), node: process.version, cpu: cpus()[0]?.model, cores: cpus().length, loadAverage: { start: loadAtStart, end: loadavg() }, records, skipped }, null, 1),
);
console.log(`\n${records.length} records → ${join(outDir, 'attention-mha.json')}`);

/**
 * attnkit (cpu, auto) and ORT MultiHeadAttention on as many threads, alternating run by run after
 * a warm-up of each: the median of the per-round time ratios (ORT / attnkit: > 1 means attnkit is
 * faster), and the ratio of the best runs.
 */
async function duel(name: string, flops: number, ours: () => Promise<PeerRun>, theirs: () => Promise<PeerRun>): Promise<void> {
  const a = await ours();
  const b = await theirs();
  try {
    const load0 = loadavg()[0] ?? Number.NaN;
    await a.run();
    await b.run();
    const ourTimes: number[] = [];
    const theirTimes: number[] = [];
    const timed = async (peer: PeerRun, into: number[]): Promise<void> => {
      const t0 = performance.now();
      await peer.run();
      into.push(performance.now() - t0);
    };
    for (let r = 0; r < DUEL_ROUNDS; r++) {
      // alternate which goes first, so neither always runs right after the other
      if (r % 2 === 0) {
        await timed(a, ourTimes);
        await timed(b, theirTimes);
      } else {
        await timed(b, theirTimes);
        await timed(a, ourTimes);
      }
    }
    const times = [ourTimes, theirTimes] as const;
    const ratio = median(theirTimes.map((t, i) => t / (ourTimes[i] as number)));
    const best = Math.min(...theirTimes) / Math.min(...ourTimes);
    records.push({ name, implementation: `attnkit auto / ORT MultiHeadAttention ×${cpuThreads} (duel)`, backend: 'cpu', metric: 'speed ratio', value: ratio, unit: '×', note: `best runs ${best.toFixed(3)}×; ${DUEL_ROUNDS} rounds; load ${load0.toFixed(2)} → ${(loadavg()[0] ?? Number.NaN).toFixed(2)}` });
    console.log(
      `${name.padEnd(34)} ${'duel: attnkit / ORT MHA ×' + String(cpuThreads)} ${(flops / median(times[0]) / 1e6).toFixed(2)} vs ${(flops / median(times[1]) / 1e6).toFixed(2)} GFLOP/s (medians): ${ratio.toFixed(3)}× (median of ${DUEL_ROUNDS} rounds), best runs ${best.toFixed(3)}×, load ${load0.toFixed(2)} → ${(loadavg()[0] ?? Number.NaN).toFixed(2)}`,
    );
  } finally {
    await a.dispose();
    await b.dispose();
  }
}

/** attnkit (auto, each backend) over each peer of the same row, wall and per CPU-second. */
function printRatios(): void {
  console.log('\n— ratio attnkit auto / peer (same run): wall, per CPU-s —');
  const throughput = records.filter((r) => r.metric === 'throughput');
  for (const name of [...new Set(throughput.map((r) => r.name))]) {
    const ours = throughput.filter((r) => r.name === name && r.implementation === 'attnkit auto');
    const peers = throughput.filter((r) => r.name === name && !r.implementation.startsWith('attnkit'));
    for (const o of ours) {
      const cells = peers.map((p) => `${p.implementation} ${(o.value / p.value).toFixed(2)}× / ${((o.perCpuSecond ?? Number.NaN) / (p.perCpuSecond ?? Number.NaN)).toFixed(2)}×`);
      console.log(`${name.padEnd(34)} ${o.backend.padEnd(12)} ${cells.join('   ')}`);
    }
  }
  for (const d of records.filter((r) => r.metric === 'speed ratio')) console.log(`${d.name.padEnd(34)} ${d.implementation}: ${d.value.toFixed(3)}× (${d.note ?? ''})`);
}

function findRoot(from: string): string {
  let dir = resolve(from);
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const up = dirname(dir);
    if (up === dir) return resolve(from);
    dir = up;
  }
  return dir;
}
