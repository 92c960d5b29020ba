// Dense attention on a real GPU through the product path: createBackend('gpujs-webgpu') and
// @attnkit/attention-mha's `attention`, exactly as a user calls it. Runs where there is no
// Node (the GPU machine) as an esbuild bundle; see ../README.md.
//
//   node attention-gpu.mjs [--out DIR] [--quick] [--prefill-only] [--prefill-n 2048,8192]
//
// Causal prefill (B 1, H 16, d 128, N 2048 and 8192; 2·N²·d·H flop, the causal half of QKᵀ and
// PV) and single-token decode (H 16, d 128, T 1K…64K; bytes of K and V read per step). Each
// prefill shape is also timed per strategy of the WGSL kernel (an A/B in the same run, through
// `attentionWithKernel`): 'fixup' (hot pass + fix-up pass, the default), 'masked' (one pass with
// the masked P·V loop on edge tiles), and 'fixup' with a NaN in one hidden value per head, so
// the fix-up pass recomputes one query tile per head. Timing:
// r calls queued back to back, then the device queue's onSubmittedWorkDone; ms per call =
// wall / r, the median of five such trials, host work (validation, planning, encoding) included. The first call of each shape
// is a warm-up (pipeline compilation), checked for finite values. Records go to
// DIR/attention-gpu.json.

/// <reference types="@webgpu/types" />
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { attention } from '@attnkit/attention-mha';
import { type PrefillNonFinite, attentionWithKernel, createWebgpuFlashKernel } from '@attnkit/attention-mha/testing';
import { type Backend, type Tensor, createBackend, slice, tensor } from '@attnkit/tensor-core';
import { SeededRandom } from '@attnkit/testkit';

interface GpuRecord {
  readonly name: string;
  readonly kernel: string;
  readonly ms: number;
  readonly value: number;
  readonly unit: string;
}

const { values } = parseArgs({ options: { out: { type: 'string', default: '.' }, quick: { type: 'boolean' }, 'prefill-only': { type: 'boolean' }, 'prefill-n': { type: 'string' } } });
const H = 16;
const D = 128;
const PREFILL_N = values['prefill-n']?.split(',').map(Number) ?? (values.quick ? [2048] : [2048, 8192]);
for (const n of PREFILL_N) if (!Number.isInteger(n) || n < 2 || n % 2 !== 0) throw new Error(`expected --prefill-n as even integers ≥ 2, got ${String(values['prefill-n'])}`);
const DECODE_T = values['prefill-only'] ? [] : values.quick ? [4096] : [1024, 4096, 16384, 65536];

/** `finite`: the warm-up's last row must be finite (false where a NaN is put in on purpose). */
async function timeCalls(device: GPUDevice, reps: number, call: () => Promise<Tensor>, finite = true): Promise<number> {
  // Warm-up: compiles the pipelines and lets the allocator settle.
  {
    using first = await call();
    await readTail(first, finite);
  }
  const trials: number[] = [];
  for (let trial = 0; trial < 5; trial++) {
    const start = performance.now();
    for (let i = 0; i < reps; i++) (await call()).dispose(); // freed once the queued work is done
    await device.queue.onSubmittedWorkDone();
    trials.push((performance.now() - start) / reps);
  }
  return trials.sort((a, b) => a - b)[2] ?? Number.NaN; // the median of five
}

function webgpuDevice(backend: Backend): GPUDevice {
  if ('webgpu' in backend && typeof backend.webgpu === 'object' && backend.webgpu !== null && 'device' in backend.webgpu) {
    const device: unknown = backend.webgpu.device;
    if (device instanceof GPUDevice) return device;
  }
  throw new Error(`expected the gpujs-webgpu backend, got ${backend.info.name}`);
}

/** Reads the last row of a [B, S, H, Dv] output: small, and ordered after everything queued. */
async function readTail(out: Tensor, finite: boolean): Promise<void> {
  const [b, s, h, dv] = out.shape;
  if (b === undefined || s === undefined || h === undefined || dv === undefined) throw new Error(`expected a rank-4 output, got [${out.shape.join(', ')}]`);
  using tail = await slice(out, [b - 1, s - 1, 0, 0], [1, 1, h, dv]);
  const v = await tail.data();
  if (finite && !v.every(Number.isFinite)) throw new Error('attention returned a non-finite value');
}

function upload(backend: Backend, rng: SeededRandom, shape: readonly number[]): Tensor {
  return tensor(backend, rng.normalArray(shape.reduce((a, b) => a * b, 1)), shape);
}

async function main(): Promise<void> {
  const { backend } = await createBackend({ prefer: 'gpujs-webgpu' });
  const device = webgpuDevice(backend);
  const rng = new SeededRandom(13);
  const records: GpuRecord[] = [];
  console.log(`attnkit dense attention on ${backend.info.name} (${backend.info.adapter}), node ${process.version}`);

  for (const N of PREFILL_N) {
    // q, k, v: [B S H D] token-major, B = 1.
    using q = upload(backend, rng, [1, N, H, D]);
    using k = upload(backend, rng, [1, N, H, D]);
    using v = upload(backend, rng, [1, N, H, D]);
    let kernel = '';
    const ms = await timeCalls(device, N >= 8192 ? 8 : 20, async () => {
      const r = await attention(q, k, v, { mask: 'causal' });
      kernel = r.dispatch.implementation;
      return r.out;
    });
    const tflops = (2 * N * N * D * H) / ms / 1e9;
    records.push({ name: `prefill causal N=${N} H=${H} d=${D} f32`, kernel, ms, value: tflops, unit: 'TFLOP/s' });
    console.log(`prefill N=${N}: ${ms.toFixed(3)} ms, ${tflops.toFixed(2)} TFLOP/s (${kernel})`);

    // The WGSL prefill's strategies for hidden non-finite values, A/B in this run. With a NaN in
    // channel 0 of key N/2 + 1's value (every head), one tile per head is hidden-and-NaN.
    const poisonedValues = rng.normalArray(N * H * D);
    for (let h = 0; h < H; h++) poisonedValues[(N / 2 + 1) * H * D + h * D] = Number.NaN; // [1 N H D]
    using poisoned = tensor(backend, poisonedValues, [1, N, H, D]);
    const cases: readonly (readonly [string, PrefillNonFinite, Tensor, boolean])[] = [
      ['fixup', 'fixup', v, true],
      ['masked', 'masked', v, true],
      ['fixup, hidden NaN', 'fixup', poisoned, false],
    ];
    for (const [label, strategy, values, finite] of cases) {
      const strategyKernel = createWebgpuFlashKernel({ prefillNonFinite: strategy });
      const abMs = await timeCalls(device, N >= 8192 ? 8 : 20, async () => (await attentionWithKernel(strategyKernel, q, k, values, { mask: 'causal' })).out, finite);
      const abTflops = (2 * N * N * D * H) / abMs / 1e9;
      records.push({ name: `prefill causal N=${N} H=${H} d=${D} f32 [${label}]`, kernel: `fused:${strategyKernel.name} prefillNonFinite=${strategy}`, ms: abMs, value: abTflops, unit: 'TFLOP/s' });
      console.log(`  prefill N=${N} [${label}]: ${abMs.toFixed(3)} ms, ${abTflops.toFixed(2)} TFLOP/s`);
    }
  }

  for (const T of DECODE_T) {
    using q = upload(backend, rng, [1, 1, H, D]);
    using k = upload(backend, rng, [1, T, H, D]);
    using v = upload(backend, rng, [1, T, H, D]);
    let kernel = '';
    const ms = await timeCalls(device, 50, async () => {
      const r = await attention(q, k, v, { mask: 'causal' });
      kernel = r.dispatch.implementation;
      return r.out;
    });
    const gbps = (2 * T * H * D * 4) / ms / 1e6;
    records.push({ name: `decode T=${T} H=${H} d=${D} f32`, kernel, ms, value: gbps, unit: 'GB/s' });
    console.log(`decode T=${T}: ${ms.toFixed(3)} ms, ${gbps.toFixed(0)} GB/s (${kernel})`);
  }

  const memory = backend.memory();
  await backend.dispose();
  mkdirSync(values.out, { recursive: true });
  writeFileSync(join(values.out, 'attention-gpu.json'), JSON.stringify({ adapter: backend.info.adapter, node: process.version, records, liveTensorsAtEnd: memory.liveTensors }, null, 1));
}

await main();
