// A decode step fused into one kernel call where one applies: on gpu.js' WebGPU device
// (webgpu/nsa-decode.ts) or on the CPU backend's WebAssembly SIMD and worker threads
// (cpu/decode.ts). Each says why it declined, and the step then runs composed (nsa.ts).

import { type Tensor, isCpuBackend } from '@attnkit/tensor-core';
import type { ResolvedNSAConfig } from './config.js';
import { NSA_CPU_DECODE_KERNEL, nsaCpuDecodeSupport, runNSACpuDecode } from './cpu/decode.js';
import type { NSADecodeOperands } from './decode-operands.js';
import type { NSAWeights } from './weights.js';
import { NSA_DECODE_KERNEL, nsaDecodeSupport, runNSADecode } from './webgpu/nsa-decode.js';

export type FusedDecodeStep = { readonly ok: true; readonly out: Tensor; readonly kernel: string } | { readonly ok: false; readonly reason: string };

/** The step on the fused kernel of q's backend, or why that kernel declined (`<kernel>: <reason>`). */
export async function fusedDecodeStep(ops: NSADecodeOperands, config: ResolvedNSAConfig, weights: NSAWeights): Promise<FusedDecodeStep> {
  const backend = ops.q.backend;
  if (isCpuBackend(backend)) {
    const cpu = nsaCpuDecodeSupport(backend, ops, config, weights);
    if (!cpu.ok) return { ok: false, reason: `${NSA_CPU_DECODE_KERNEL}: ${cpu.reason}` };
    return { ok: true, out: await runNSACpuDecode(cpu.backend, cpu.heap, ops, config, weights), kernel: NSA_CPU_DECODE_KERNEL };
  }
  const gpu = nsaDecodeSupport(backend, ops, config, weights);
  if (!gpu.ok) return { ok: false, reason: `${NSA_DECODE_KERNEL}: ${gpu.reason}` };
  return { ok: true, out: runNSADecode(gpu.host, gpu.variant, ops, config, weights), kernel: NSA_DECODE_KERNEL };
}
