// pnpm bench (tensor-core): matmul 1024³, a one-row product 1 × 1792 · 1792 × 1792 (a decode
// step's Linear) and a row softmax of 4096×4096 on every backend
// available here, beside @tensorflow/tfjs-backend-wasm and onnxruntime-node on the same data.
// Each figure times one call until its result is readable on the host.
//
//   pnpm --filter @attnkit/tensor-core bench          # all backends
//   ATTNKIT_BACKENDS=cpu,gpujs-webgpu pnpm bench       # a subset
import { BenchRun, type MeasureOptions, type Measurement, type Peer, type PeerOp, gflops, measure, onnxRuntime, tfjsWasm } from '@attnkit/bench';
import { SeededRandom } from '@attnkit/testkit';
import { createRequire } from 'node:module';
import { matmul, softmax, tensor } from './ops/index.js';
import { availableBackends } from './testing/index.js';
import { CpuBackend } from './cpu/backend.js';
import { measureCeilings } from './cpu/wasm/ceiling.bench.js';

const MATMUL = { M: 1024, K: 1024, N: 1024 };
const SOFTMAX = { rows: 4096, cols: 4096 };
/** One token through a square projection of DeepSeek-V3.2 ÷ 4's width. */
const DECODE = { M: 1, K: 1792, N: 1792 };
/**
 * The one-row product takes well under a millisecond: the harness's default cap of 50 calls
 * would time a 20–50 ms window, which one stray process on the shared machine decides; up to
 * 1000 calls (about half a second) for every implementation.
 */
const DECODE_OPTIONS = { warmup: 20, iterations: 5, minTimeMs: 2000, maxIterations: 1000 } as const;
/** Counted per softmax element: scale-and-max, subtract, exp, sum, divide. */
const SOFTMAX_FLOPS_PER_ELEMENT = 5;

const require = createRequire(import.meta.url);
const version = (pkg: string): string => {
  const manifest: unknown = require(`${pkg}/package.json`);
  return typeof manifest === 'object' && manifest !== null && 'version' in manifest && typeof manifest.version === 'string' ? manifest.version : 'unknown';
};

const rng = new SeededRandom(1);
const a = rng.normalArray(MATMUL.M * MATMUL.K);
const b = rng.normalArray(MATMUL.K * MATMUL.N);
const x = rng.normalArray(SOFTMAX.rows * SOFTMAX.cols, 3);
const xRow = rng.normalArray(DECODE.M * DECODE.K);
const w = rng.normalArray(DECODE.K * DECODE.N);
const matmulName = `matmul ${MATMUL.M}x${MATMUL.K}x${MATMUL.N}`;
const softmaxName = `softmax ${SOFTMAX.rows}x${SOFTMAX.cols}`;
const decodeName = `matmul ${DECODE.M}x${DECODE.K}x${DECODE.N}`;
const decodeFlops = 2 * DECODE.M * DECODE.K * DECODE.N;
const matmulFlops = 2 * MATMUL.M * MATMUL.K * MATMUL.N;
const softmaxFlops = SOFTMAX_FLOPS_PER_ELEMENT * SOFTMAX.rows * SOFTMAX.cols;

const peers: Peer[] = [await tfjsWasm(), await onnxRuntime()];
const run = new BenchRun('tensor-core', {
  peers: peers.map((p) => p.implementation),
  versions: {
    '@attnkit/tensor-core': version('@attnkit/tensor-core'),
    'gpu.js': version('gpu.js'),
    webgpu: version('webgpu'),
    ...Object.fromEntries(peers.map((p) => [p.implementation, p.version])),
  },
});

function report(name: string, implementation: string, backend: string, flops: number, m: Measurement): void {
  run.record({ name, implementation, backend, metric: 'throughput', value: gflops(flops, m.medianMs), unit: 'GFLOP/s' });
  run.record({ name, implementation, backend, metric: 'work per CPU time', value: gflops(flops, m.medianCpuMs), unit: 'GFLOP/CPU-s' });
  run.record({ name, implementation, backend, metric: 'median time', value: m.medianMs, unit: 'ms' });
  console.log(
    `${name.padEnd(24)} ${implementation.padEnd(30)} ${backend.padEnd(22)} ${gflops(flops, m.medianMs).toFixed(2).padStart(8)} GFLOP/s ${m.medianMs.toFixed(1).padStart(9)} ms ${gflops(flops, m.medianCpuMs).toFixed(2).padStart(8)} GFLOP/CPU-s`,
  );
}

const { available, skipped } = await availableBackends();
for (const s of skipped) console.log(`not available: ${s.name} (${s.reason})`);

for (const target of available) {
  const backend = await target.create();
  // the JavaScript modes take seconds per call: time them fewer times
  const slow = target.name === 'gpujs-cpu';
  const options = slow ? { warmup: 1, iterations: 2, minTimeMs: 0 } : { warmup: 2, iterations: 5, minTimeMs: 2000 };
  try {
    using ta = tensor(backend, a, [MATMUL.M, MATMUL.K]);
    using tb = tensor(backend, b, [MATMUL.K, MATMUL.N]);
    const mm = await measure(async () => {
      using c = await matmul(ta, tb);
      await c.data();
    }, options);
    report(matmulName, 'attnkit', target.name, matmulFlops, mm);
    using tRow = tensor(backend, xRow, [DECODE.M, DECODE.K]);
    using tw = tensor(backend, w, [DECODE.K, DECODE.N]);
    const dm = await measure(async () => {
      using c = await matmul(tRow, tw);
      await c.data();
    }, slow ? options : DECODE_OPTIONS);
    report(decodeName, 'attnkit', target.name, decodeFlops, dm);
    using tx = tensor(backend, x, [SOFTMAX.rows, SOFTMAX.cols]);
    const sm = await measure(async () => {
      using y = await softmax(tx);
      await y.data();
    }, options);
    report(softmaxName, 'attnkit', target.name, softmaxFlops, sm);
  } finally {
    await backend.dispose();
  }
}

// The CPU backend's plain TypeScript kernels (the oracle the SIMD GEMM replaced), same run
if (available.some((t) => t.name === 'cpu')) {
  const plain = new CpuBackend({ simd: false });
  using ta = tensor(plain, a, [MATMUL.M, MATMUL.K]);
  using tb = tensor(plain, b, [MATMUL.K, MATMUL.N]);
  const mm = await measure(
    async () => {
      using c = await matmul(ta, tb);
      await c.data();
    },
    { warmup: 1, iterations: 3, minTimeMs: 2000 },
  );
  report(matmulName, 'attnkit (plain TypeScript)', 'cpu simd: false', matmulFlops, mm);
}

// What 128-bit WebAssembly SIMD can do here at best, per core (the matmul is read against it)
if (available.some((t) => t.name === 'cpu')) {
  for (const c of await measureCeilings()) {
    run.record({ name: 'wasm SIMD ceiling, 1 thread', implementation: c.label, backend: 'cpu', metric: 'throughput', value: c.gflops, unit: 'GFLOP/s' });
    console.log(`${'wasm SIMD ceiling'.padEnd(24)} ${c.label.padEnd(54)} ${c.gflops.toFixed(2).padStart(8)} GFLOP/s`);
  }
}

for (const peer of peers) {
  const timed = async (op: PeerOp, options: MeasureOptions = { warmup: 2, iterations: 5, minTimeMs: 2000 }): Promise<Measurement> => {
    try {
      return await measure(() => op.run(), options);
    } finally {
      await op.dispose();
    }
  };
  report(matmulName, peer.implementation, peer.backend, matmulFlops, await timed(await peer.matmul(a, b, MATMUL.M, MATMUL.K, MATMUL.N)));
  report(decodeName, peer.implementation, peer.backend, decodeFlops, await timed(await peer.matmul(xRow, w, DECODE.M, DECODE.K, DECODE.N), DECODE_OPTIONS));
  report(softmaxName, peer.implementation, peer.backend, softmaxFlops, await timed(await peer.softmax(x, SOFTMAX.rows, SOFTMAX.cols)));
  await peer.dispose();
}

console.log(`\n${run.table()}`);
console.log(`records: ${run.write()}`);
