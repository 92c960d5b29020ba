// The attention operator of a DeepSeek-V3.2 decode step at the model's full widths, DSA against
// dense MLA, given what the layer's projections already produced: MLA's absorbed queries
// q̃ = [W_UKᵀ·q_nope | q_rope] [B, 1, 128, 576], the indexer's queries q_I [B, 1, 64, 128] and
// head weights w [B, 1, 64], and the two caches of T tokens (latent rows [B, T, 1, 576], index
// keys [B, T, 1, 128]). The projections are the same on both sides and left out.
//
//   dense  attention(q̃, latent, values = the latent's first 512 channels), causal
//   DSA    the indexer's scores and top-2048 (LightningIndexer.select's kernels), then
//          sparseAttention over the picks with distinctIndices (what DSA.forward calls)
//
//   tsx src/operator.bench.ts [--backend gpujs-webgpu] [--contexts 16384,65536] [--batch 1] [--reps 5]
//
// On a WebGPU backend each row is timed the way a decode loop uses a GPU: QUEUED_STEPS steps
// queued back to back, ended by one `onSubmittedWorkDone`, median of `reps` trials after a
// warm-up trial (`gpu queued`), with the host time until the last call returned (`host`);
// `wall` is one step plus the readback of its output, median of `reps`. Elsewhere only `wall`.
// Records go to bench-results/indexer-dsa-operator.json at the repository root.

/// <reference types="@webgpu/types" />
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { attention, sparseAttention } from '@attnkit/attention-mha';
import { BACKEND_PREFERENCE, type Tensor, createBackend, isWebGpuHost, tensor } from '@attnkit/tensor-core';
import { benchArgs } from '@attnkit/bench/cli';
import { queuedSteps } from '@attnkit/bench/queued';
import { SeededRandom } from '@attnkit/testkit';
import { DEEPSEEK_V32_DSA, resolveDSAConfig } from './config.js';
import { dispatchIndexer } from './kernels/dispatch.js';

const args = benchArgs('tsx src/operator.bench.ts', {
  backend: { type: 'string', default: 'gpujs-webgpu', help: `backend to measure on (one of ${BACKEND_PREFERENCE.join(', ')})` },
  contexts: { type: 'string', default: '16384,65536', help: 'context lengths, comma-separated' },
  batch: { type: 'string', default: '1', help: 'sequences per step' },
  reps: { type: 'string', default: '5', help: 'timed repetitions (the median is reported)' },
});
const contexts = args.integers('contexts') ?? [];
const B = args.positiveInteger('batch') ?? 1;
const reps = args.positiveInteger('reps') ?? 5;
/** Steps queued per trial of the GPU timing. */
const QUEUED_STEPS = 100;

const config = resolveDSAConfig({ ...DEEPSEEK_V32_DSA, maxSeqLen: Math.max(...contexts) + 1 });
const { nHeads: H, kvLoraRank: C, qkRopeHeadDim: R, indexNHeads: HI, indexHeadDim: DI, indexTopk: topk, softmaxScale: scale } = config;
const requested = args.string('backend') ?? 'gpujs-webgpu';
const backendName = BACKEND_PREFERENCE.find((n) => n === requested);
if (!backendName) throw new Error(`unknown backend "${requested}" (one of ${BACKEND_PREFERENCE.join(', ')})`);
const { backend } = await createBackend({ prefer: backendName });
const device = isWebGpuHost(backend) ? backend.webgpu.device : null;
const rng = new SeededRandom(5);

interface BenchRecord {
  readonly name: string;
  readonly implementation: string;
  readonly backend: string;
  readonly metric: string;
  readonly value: number;
  readonly unit: string;
}
const records: BenchRecord[] = [];
const record = (name: string, implementation: string, metric: string, value: number, unit: string): void => {
  records.push({ name, implementation, backend: backend.info.name, metric, value, unit });
};

console.log(`indexer-dsa attention operator at DeepSeek-V3.2's full widths on ${backend.info.name} (${backend.info.adapter}), Node ${process.version}`);
console.log(`B ${B}; MLA absorbed: ${H} query heads on one latent kv head of ${C} + ${R} channels (values: the ${C}-channel latent); indexer ${HI} heads × ${DI}, top-k ${topk}; f32`);
console.log(device ? `gpu queued: ${QUEUED_STEPS} steps back to back, one onSubmittedWorkDone, median of ${reps}; wall: one step + readback\n` : 'wall: one step + readback\n');

for (const T of contexts) {
  const name = `decode ctx=${T}`;
  const lengths = new Array<number>(B).fill(T);
  using qAbsorbed = upload([B, 1, H, C + R]); // [B, 1, H, C+R]
  using latent = upload([B, T, 1, C + R]); // [B, T, 1, C+R]
  using qIndex = upload([B, 1, HI, DI]); // [B, 1, H_I, D_I]
  using weights = upload([B, 1, HI], 0.3 / Math.sqrt(HI * DI)); // [B, 1, H_I]
  using indexKeys = upload([B, T, 1, DI]); // [B, T, 1, D_I]
  const K = Math.min(topk, T);
  const problem = { fn: 'operator.bench', B, S: 1, heads: HI, headDim: DI, T, lengths, topk: K, keepScores: false, signal: undefined };
  const common = { scale, kvLengths: lengths, valueDim: C };

  const select = async (): Promise<{ indices: Tensor; implementation: string }> => {
    const { indices, dispatch } = await dispatchIndexer(backend, { q: qIndex, weights, keys: indexKeys }, problem);
    return { indices, implementation: dispatch.implementation };
  };
  const dense = async (): Promise<{ out: Tensor; implementation: string }> => {
    const { out, dispatch } = await attention(qAbsorbed, latent, null, { ...common, mask: 'causal' });
    return { out, implementation: dispatch.implementation };
  };
  const overPicks = async (picks: Tensor): Promise<{ out: Tensor; implementation: string }> => {
    const { out, dispatch } = await sparseAttention(qAbsorbed, latent, null, picks, { ...common, distinctIndices: true });
    return { out, implementation: dispatch.implementation };
  };
  const dsa = async (): Promise<{ out: Tensor; implementation: string }> => {
    const picked = await select();
    try {
      const r = await overPicks(picked.indices);
      return { out: r.out, implementation: `${picked.implementation} + ${r.implementation}` };
    } finally {
      picked.indices.dispose(); // queued work keeps what it reads
    }
  };
  const indexer = async (): Promise<{ out: Tensor; implementation: string }> => {
    const { indices, implementation } = await select();
    return { out: indices, implementation };
  };
  using fixedPicks = (await select()).indices; // for the attention-over-picks row alone

  const rows: readonly (readonly [string, () => Promise<{ out: Tensor; implementation: string }>])[] = [
    ['mla-dense', dense],
    ['dsa', dsa],
    ['dsa: indexer (scores + top-k)', indexer],
    ['dsa: attention over the picks', () => overPicks(fixedPicks)],
  ];
  const times = new Map<string, number>();
  for (const [implementation, step] of rows) {
    const ran = await warm(step);
    const wall = await wallTime(step);
    record(name, implementation, 'wall time', wall, 'ms/step');
    let line = `${String(T).padStart(7)}  ${implementation.padEnd(30)} wall ${ms(wall).padStart(7)} ms`;
    if (device) {
      const { host, done } = await queuedSteps(device.queue, async () => (await step()).out.dispose(), { steps: QUEUED_STEPS, trials: reps });
      record(name, implementation, 'gpu queued', done, 'ms/step');
      record(name, implementation, 'host time (queued)', host, 'ms/step');
      times.set(implementation, done);
      line += `   gpu queued ${ms(done).padStart(7)} ms   host ${ms(host).padStart(6)} ms`;
    } else {
      times.set(implementation, wall);
    }
    console.log(`${line}   [${ran}]`);
  }
  const speedUp = (times.get('mla-dense') ?? NaN) / (times.get('dsa') ?? NaN);
  record(name, 'dsa', device ? 'speed-up (gpu queued)' : 'speed-up (wall)', speedUp, '×');
  console.log(`${String(T).padStart(7)}  DSA speed-up over dense MLA: ${speedUp.toFixed(1)}×   (latent cache ${mib(latent.size * 4)}, index keys ${mib(indexKeys.size * 4)})\n`);
}
await backend.dispose();

const out = resolve(dirname(fileURLToPath(import.meta.url)), '../../../bench-results/indexer-dsa-operator.json');
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, `${JSON.stringify({ package: '@attnkit/indexer-dsa', date: new Date().toISOString(), node: process.version, batch: B, records }, null, 2)}\n`);
console.log(`records: ${out}`);

// ---------------------------------------------------------------------------------------------

/** A random f32 tensor of `shape`, uniform in ±amplitude (filled in slices: 64K × 576 is 151 MB). */
function upload(shape: readonly number[], amplitude = 1): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (rng.next() * 2 - 1) * amplitude;
  return tensor(backend, data, shape);
}

/** Three untimed steps (pipelines, JIT); returns the implementation that ran. */
async function warm(step: () => Promise<{ out: Tensor; implementation: string }>): Promise<string> {
  let ran = '';
  for (let i = 0; i < 3; i++) {
    const r = await step();
    await r.out.data();
    r.out.dispose();
    ran = r.implementation;
  }
  return ran;
}

async function wallTime(step: () => Promise<{ out: Tensor }>): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    const { out } = await step();
    await out.data();
    samples.push(performance.now() - t0);
    out.dispose();
  }
  return median(samples);
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

function ms(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(3);
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(0)} MiB`;
}
