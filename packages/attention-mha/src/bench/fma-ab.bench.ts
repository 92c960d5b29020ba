// The FMA (relaxed_madd) and mul + add builds of the CPU backend in one process, run by run:
// causal prefill and decode through `attention` on two CpuBackends that differ only in `fma`,
// alternating which goes first each round, so a change in the machine's load hits both. Prints
// the median per-round time ratio (mul+add time / FMA time: > 1 means FMA is faster), the
// medians and the best runs, with the load average before and after.
//
//   pnpm --filter @attnkit/attention-mha exec tsx --experimental-wasm-relaxed-simd --tsconfig tsconfig.json src/bench/fma-ab.bench.ts [-- --rounds 9 --prefill-d 64,128 --decode-t 65536]

import { loadavg } from 'node:os';
import { benchArgs } from '@attnkit/bench/cli';
import { type Backend, CpuBackend, type Tensor, tensor } from '@attnkit/tensor-core';
import { attention } from '../attention.js';

const args = benchArgs('src/bench/fma-ab.bench.ts', {
  rounds: { type: 'string', default: '9', help: 'alternating rounds per shape' },
  'prefill-n': { type: 'string', default: '2048', help: 'prefill sequence lengths' },
  'prefill-d': { type: 'string', default: '64,128', help: 'prefill head dims (8 heads)' },
  'decode-t': { type: 'string', default: '65536', help: "decode context lengths (MHA 8 × 128), '' for none" },
});
const ROUNDS = args.count('rounds') ?? 9;
const PREFILL_N = args.integers('prefill-n') ?? [2048];
const PREFILL_D = args.integers('prefill-d') ?? [64, 128];
const DECODE_T = args.integers('decode-t') ?? [65536];

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const load = (): string => loadavg()[0]?.toFixed(2) ?? '?';

function randomTensor(backend: Backend, shape: number[]): Tensor {
  const n = shape.reduce((a, x) => a * x, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
  return tensor(backend, a, shape);
}

interface Runner {
  run(): Promise<number>;
  dispose(): void;
}

function runner(backend: Backend, S: number, T: number, H: number, D: number): Runner {
  const q = randomTensor(backend, [1, S, H, D]);
  const k = randomTensor(backend, [1, T, H, D]);
  const v = randomTensor(backend, [1, T, H, D]);
  return {
    run: async () => {
      const t0 = performance.now();
      const { out } = await attention(q, k, v, { mask: 'causal' });
      await out.data();
      const ms = performance.now() - t0;
      out.dispose();
      return ms;
    },
    dispose: () => [q, k, v].forEach((t) => t.dispose()),
  };
}

const fmaBackend = new CpuBackend();
const mulAddBackend = new CpuBackend({ fma: false });
if (!fmaBackend.wasm?.relaxedSimd) throw new Error('relaxed SIMD not validated: run Node with --experimental-wasm-relaxed-simd');
console.log(`node ${process.version}; FMA: ${fmaBackend.info.adapter}; mul+add: ${mulAddBackend.info.adapter}; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);

async function ab(label: string, S: number, T: number, D: number, unit: (ms: number) => string): Promise<void> {
  const a = runner(fmaBackend, S, T, 8, D);
  const b = runner(mulAddBackend, S, T, 8, D);
  try {
    await a.run();
    await b.run();
    const l0 = load();
    const ta: number[] = [];
    const tb: number[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      if (r % 2 === 0) {
        ta.push(await a.run());
        tb.push(await b.run());
      } else {
        tb.push(await b.run());
        ta.push(await a.run());
      }
    }
    const ratio = median(tb.map((t, i) => t / (ta[i] as number)));
    console.log(
      `${label.padEnd(28)} FMA ${unit(median(ta))} (best ${unit(Math.min(...ta))})   mul+add ${unit(median(tb))} (best ${unit(Math.min(...tb))})   mul+add time / FMA time: median ${ratio.toFixed(3)}, best ${(Math.min(...tb) / Math.min(...ta)).toFixed(3)}   load ${l0} → ${load()}`,
    );
  } finally {
    a.dispose();
    b.dispose();
  }
}

for (const D of PREFILL_D) {
  for (const N of PREFILL_N) {
    const flops = 2 * N * N * D * 8;
    await ab(`prefill N=${N} d=${D} H=8`, N, N, D, (ms) => `${(flops / ms / 1e6).toFixed(1).padStart(5)} GFLOP/s`);
  }
}
for (const T of DECODE_T) await ab(`decode MHA 8×128 T=${T}`, 1, T, 128, (ms) => `${(1000 / ms).toFixed(2).padStart(6)} tok/s`);
await fmaBackend.dispose();
await mulAddBackend.dispose();
