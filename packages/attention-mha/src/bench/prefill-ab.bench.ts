// Variants of the CPU causal prefill in one process, run by run, the order rotating each round so
// that a change in the machine's load hits every variant alike: this tree's `attention`, the same
// from a copy of another commit's src/ (`--base`: `git archive <commit> packages/attention-mha/src
// | tar -x -C /tmp/base`, then --base /tmp/base/packages/attention-mha/src), on one thread, and
// onnxruntime-node's MultiHeadAttention on two threads (the issue-12 peer). Each attnkit variant
// gets its own CpuBackend (its own heap and module cache). Prints per variant the median and best
// GFLOP/s (2·N²·d per head, 8 heads) and the median of its per-round time ratios to the first
// variant's (> 1: the first is faster), with the load average before and after; and the same
// per second of this process's CPU time (all threads: on a machine other processes share, the
// CPU time a prefill takes moves less than its wall time).
//
//   pnpm --filter @attnkit/attention-mha exec tsx --experimental-wasm-relaxed-simd --tsconfig tsconfig.json src/bench/prefill-ab.bench.ts [-- --variants this,base,ort2 --base DIR --rounds 11 --prefill-d 64,128]

import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { benchArgs } from '@attnkit/bench/cli';
import { CpuBackend, type Tensor, tensor } from '@attnkit/tensor-core';
import { attention } from '../attention.js';
import { ortMultiHeadAttention } from './peers.bench.js';

const args = benchArgs('src/bench/prefill-ab.bench.ts', {
  variants: { type: 'string', default: 'this,ort2', help: 'comma-separated, the first is the reference: this, base, base2, one-thread, ort2' },
  base: { type: 'string', help: "the src/ directory of another commit's attention-mha (for the variant 'base')" },
  base2: { type: 'string', help: "the same for a second one (the variant 'base2')" },
  rounds: { type: 'string', default: '11', help: 'rotating rounds per shape' },
  'prefill-n': { type: 'string', default: '2048', help: 'prefill sequence lengths' },
  'prefill-d': { type: 'string', default: '64,128', help: 'prefill head dims (8 heads)' },
});
const ROUNDS = args.count('rounds') ?? 11;
const PREFILL_N = args.integers('prefill-n') ?? [2048];
const PREFILL_D = args.integers('prefill-d') ?? [64, 128];
const H = 8;
const names = (args.string('variants') ?? 'this,ort2').split(',').filter((s) => s.length > 0);

type Attention = typeof attention;
const importAttention = async (dir: string | undefined): Promise<Attention | null> =>
  dir ? ((await import(pathToFileURL(resolve(dir, 'attention.ts')).href)) as { attention: Attention }).attention : null;
const baseAttention = await importAttention(args.string('base'));
const base2Attention = await importAttention(args.string('base2'));

interface Variant {
  /** One prefill: its wall time in ms. */
  run(): Promise<number>;
  dispose(): Promise<void>;
}

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
const load = (): string => loadavg()[0]?.toFixed(2) ?? '?';

function randomTensor(backend: CpuBackend, shape: number[]): Tensor {
  const n = shape.reduce((a, x) => a * x, 1);
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
  return tensor(backend, a, shape);
}

function attnkit(run: Attention, threads: number | undefined, N: number, D: number): Variant {
  const backend = new CpuBackend(threads !== undefined ? { threads } : {});
  if (!backend.wasm?.relaxedSimd) throw new Error('relaxed SIMD not validated: run Node with --experimental-wasm-relaxed-simd');
  const [q, k, v] = [0, 1, 2].map(() => randomTensor(backend, [1, N, H, D])) as [Tensor, Tensor, Tensor];
  return {
    run: async () => {
      const t0 = performance.now();
      const { out } = await run(q, k, v, { mask: 'causal' });
      await out.data();
      const ms = performance.now() - t0;
      out.dispose();
      return ms;
    },
    dispose: async () => {
      for (const t of [q, k, v]) t.dispose();
      await backend.dispose();
    },
  };
}

async function variant(name: string, N: number, D: number): Promise<Variant> {
  switch (name) {
    case 'this':
      return attnkit(attention, undefined, N, D);
    case 'one-thread':
      return attnkit(attention, 1, N, D);
    case 'base':
      if (!baseAttention) throw new Error("the variant 'base' needs --base DIR");
      return attnkit(baseAttention, undefined, N, D);
    case 'base2':
      if (!base2Attention) throw new Error("the variant 'base2' needs --base2 DIR");
      return attnkit(base2Attention, undefined, N, D);
    case 'ort2': {
      const peer = await ortMultiHeadAttention({ B: 1, S: N, T: N, Hq: H, Hkv: H, D, causal: true }, 2);
      return {
        run: async () => {
          const t0 = performance.now();
          await peer.run();
          return performance.now() - t0;
        },
        dispose: () => peer.dispose(),
      };
    }
    default:
      throw new Error(`unknown variant ${name}: this, base, base2, one-thread, ort2`);
  }
}

console.log(`node ${process.version}; variants ${names.join(', ')}; ${ROUNDS} rounds; load ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
for (const D of PREFILL_D) {
  for (const N of PREFILL_N) {
    const flops = 2 * N * N * D * H;
    const variants = await Promise.all(names.map((n) => variant(n, N, D)));
    for (const v of variants) await v.run(); // warm-up: compile, tier up, allocate
    const l0 = load();
    const times: number[][] = variants.map(() => []);
    const cpu: number[][] = variants.map(() => []);
    for (let r = 0; r < ROUNDS; r++) {
      for (let j = 0; j < variants.length; j++) {
        const i = (j + r) % variants.length;
        const c0 = cpuMs();
        times[i]?.push(await (variants[i] as Variant).run());
        cpu[i]?.push(cpuMs() - c0);
      }
    }
    const gf = (ms: number): string => (flops / ms / 1e6).toFixed(1).padStart(5);
    const ref = times[0] as number[];
    const refCpu = cpu[0] as number[];
    console.log(`prefill N=${N} d=${D} H=${H}, load ${l0} → ${load()}`);
    names.forEach((name, i) => {
      const t = times[i] as number[];
      const c = cpu[i] as number[];
      const ratio = median(t.map((x, r) => x / (ref[r] as number)));
      const cpuRatio = median(c.map((x, r) => x / (refCpu[r] as number)));
      console.log(
        `  ${name.padEnd(11)} median ${gf(median(t))} GFLOP/s  best ${gf(Math.min(...t))}   time / ${names[0]}'s: median ${ratio.toFixed(3)}, best ${(Math.min(...t) / Math.min(...ref)).toFixed(3)}   per CPU-s ${gf(median(c))}, CPU time / ${names[0]}'s ${cpuRatio.toFixed(3)}`,
      );
    });
    for (const v of variants) await v.dispose();
  }
}
