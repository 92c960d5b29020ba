// pnpm --filter @attnkit/attention-mha bench [-- --quick] [-- --backend cpu,gpujs-webasm]
//
// Causal prefill at N = 512, 2048, 8192 (d = 64 and 128, 8 heads) and single-token decode at
// T = 1K … 64K (MHA 8 × 128 and GQA 32 query / 8 kv heads × 128), for attnkit on every backend
// available, beside onnxruntime-node's MultiHeadAttention / GroupQueryAttention contrib
// operators and a tfjs-backend-wasm composition, measured in the same run.
//
// Conventions: prefill GFLOP/s counts 2·N²·d per head (the multiply-adds of QKᵀ and PV under a
// causal mask, which skips half of each); decode is tokens/s for batch 1. Each figure is the
// median of ≥ 3 timed runs after a warm-up run (one run when a single run takes over 20 s).
// Records: {name, implementation, backend, metric, value, unit} (the @attnkit/bench format),
// written to bench-results/attention-mha.json at the repository root.

import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { type Backend, type Tensor, tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { attention } from '../attention.js';
import { type AttentionShape, ORT_THREADS, type PeerRun, initTfjsWasm, ortGroupQueryAttention, ortMultiHeadAttention, tfjsComposition } from './peers.bench.js';

interface BenchRecord {
  readonly name: string;
  readonly implementation: string;
  readonly backend: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
  readonly ms?: number;
  readonly note?: string;
}

// `pnpm bench -- --quick` passes a literal `--` first; drop it so the flags parse as flags.
const argv = process.argv.slice(2).filter((a, i) => !(i === 0 && a === '--'));
const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean' }, backend: { type: 'string' }, 'time-limit': { type: 'string' } } });
if (values.backend) process.env.ATTNKIT_BACKENDS = values.backend;
/** A measurement predicted to take longer than this (one run, seconds) is skipped and said so. */
const LIMIT_S = Number(values['time-limit'] ?? 150);
const PREFILL_N = values.quick ? [512, 2048] : [512, 2048, 8192];
const PREFILL_D = [64, 128];
const PREFILL_HEADS = 8;
const DECODE_T = values.quick ? [1024, 4096] : [1024, 4096, 16384, 65536];
const DECODE_CONFIGS = [
  { label: 'MHA 8×128', Hq: 8, Hkv: 8, D: 128 },
  { label: 'GQA 32q/8kv×128', Hq: 32, Hkv: 8, D: 128 },
];

const records: BenchRecord[] = [];
const skipped: string[] = [];

/** Median wall time of `run` in ms: one warm-up, then runs until 1 s or 10 runs (1 run past 20 s). */
async function measure(run: () => Promise<void>): Promise<{ ms: number; runs: number }> {
  let t0 = performance.now();
  await run();
  const first = performance.now() - t0;
  if (first > 20_000) return { ms: first, runs: 1 };
  const times: number[] = [];
  const started = performance.now();
  while (times.length < 3 || (times.length < 10 && performance.now() - started < 1000)) {
    t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)] ?? first, runs: times.length };
}

/** Time of the last run per implementation, to predict (and skip) the next size. */
const lastCost = new Map<string, { ms: number; work: number }>();

async function bench(name: string, implementation: string, backendName: string, work: number, make: () => Promise<PeerRun>, metric: (ms: number) => Omit<BenchRecord, 'name' | 'implementation' | 'backend'>): Promise<void> {
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
    const { ms, runs } = await measure(() => (runner ? runner.run() : Promise.resolve()));
    lastCost.set(key, { ms, work });
    const r = { name, implementation, backend: backendName, ...metric(ms), ms };
    records.push(r);
    console.log(`${name.padEnd(34)} ${implementation.padEnd(32)} ${backendName.padEnd(28)} ${r.value.toFixed(2).padStart(9)} ${r.unit.padEnd(8)} ${ms.toFixed(1).padStart(10)} ms (${runs} runs)`);
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

const { available, skipped: unavailable } = await availableBackends();
const tfjsInfo = await initTfjsWasm();
console.log(`node ${process.version}; attnkit backends: ${available.map((b) => b.name).join(', ')}; onnxruntime-node (${ORT_THREADS} thread); ${tfjsInfo}`);
for (const u of unavailable) console.log(`  backend not available: ${u.name} (${u.reason})`);
const backends: { name: string; backend: Backend }[] = [];
for (const b of available) backends.push({ name: b.name, backend: await b.create() });

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
      if (bname === 'cpu') await bench(name, 'attnkit composed', bname, flops, attnkitRun(backend, s, 'composed', () => undefined), metric);
    }
    await bench(name, 'ORT MultiHeadAttention', 'onnxruntime-node cpu', flops, () => ortMultiHeadAttention(s), metric);
    await bench(name, 'ORT GroupQueryAttention', 'onnxruntime-node cpu', flops, () => ortGroupQueryAttention(s), metric);
    await bench(name, 'matmul+softmax+matmul', 'tfjs-backend-wasm', flops, () => tfjsComposition(s), metric);
  }
}

console.log('\n— decode, one new token after T − 1 cached (tokens/s, batch 1) —');
for (const c of DECODE_CONFIGS) {
  for (const T of DECODE_T) {
    const s: AttentionShape = { B: 1, S: 1, T, Hq: c.Hq, Hkv: c.Hkv, D: c.D, causal: true };
    const name = `decode ${c.label} T=${T}`;
    const work = T * c.Hkv * c.D;
    const metric = (ms: number): Omit<BenchRecord, 'name' | 'implementation' | 'backend'> => ({ metric: 'throughput', value: 1000 / ms, unit: 'tok/s' });
    for (const { name: bname, backend } of backends) {
      let ran = 'attnkit';
      await bench(name, 'attnkit auto', bname, work, attnkitRun(backend, s, 'auto', (d) => (ran = d)), (ms) => ({ ...metric(ms), note: ran }));
    }
    if (c.Hq === c.Hkv) await bench(name, 'ORT MultiHeadAttention', 'onnxruntime-node cpu', work, () => ortMultiHeadAttention(s), metric);
    await bench(name, 'ORT GroupQueryAttention', 'onnxruntime-node cpu', work, () => ortGroupQueryAttention(s), metric);
    await bench(name, 'matmul+softmax+matmul', 'tfjs-backend-wasm', work, () => tfjsComposition(s), metric);
  }
}

for (const { backend } of backends) await backend.dispose();
if (skipped.length > 0) {
  console.log('\nskipped:');
  for (const s of skipped) console.log(`  ${s}`);
}
const root = findRoot(process.cwd());
const outDir = join(root, 'bench-results');
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, 'attention-mha.json'), JSON.stringify({ date: new Date().toISOString(), node: process.version, records, skipped }, null, 1));
console.log(`\n${records.length} records → ${join(outDir, 'attention-mha.json')}`);

function findRoot(from: string): string {
  let dir = resolve(from);
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const up = dirname(dir);
    if (up === dir) return resolve(from);
    dir = up;
  }
  return dir;
}
