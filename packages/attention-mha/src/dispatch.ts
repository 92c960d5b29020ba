// Picks the implementation of one attention call: the first fused kernel whose `supports`
// accepts the inputs on this backend, else the composed fallback (MLX fast.cpp style). The
// result says what ran and, when a fused kernel declined, why.

import { type Backend, ConfigError } from '@attnkit/tensor-core';
import { composedAttention } from './composed/composed.js';
import { cpuFlashKernel } from './cpu/flash.js';
import { cpuWasmFlashKernel } from './cpu/wasm-flash.js';
import { gpujsFlashKernel } from './gpujs/flash.js';
import { webgpuFlashKernel } from './webgpu/webgpu-flash.js';
import type { AttentionInputs, AttentionOutputs, AttentionProblem, FusedAttentionKernel } from './problem.js';
import { referenceAttention } from './reference-runner.js';
import type { AttentionImplementation, DispatchReport } from './types.js';

/** Fused kernels in the order they are tried (on the CPU: WebAssembly SIMD, then TypeScript). */
export const FUSED_ATTENTION_KERNELS: readonly FusedAttentionKernel[] = [cpuWasmFlashKernel, cpuFlashKernel, webgpuFlashKernel, gpujsFlashKernel];

export async function dispatchAttention(
  backend: Backend,
  inputs: AttentionInputs,
  problem: AttentionProblem,
  implementation: AttentionImplementation = 'auto',
  kernels: readonly FusedAttentionKernel[] = FUSED_ATTENTION_KERNELS,
): Promise<AttentionOutputs & { dispatch: DispatchReport }> {
  if (implementation === 'reference') {
    return { ...(await referenceAttention(backend, inputs, problem)), dispatch: { implementation: 'reference' } };
  }
  if (implementation === 'composed') {
    return { ...(await composedAttention(backend, inputs, problem)), dispatch: { implementation: 'composed', declined: "implementation: 'composed' was requested" } };
  }
  const declined: string[] = [];
  for (const kernel of kernels) {
    const support = kernel.supports(backend, inputs, problem);
    if (support.ok) {
      // Earlier kernels' reasons stay in the report: they say why a faster path did not run.
      const dispatch: DispatchReport = declined.length > 0 ? { implementation: `fused:${kernel.name}`, declined: declined.join('; ') } : { implementation: `fused:${kernel.name}` };
      return { ...(await kernel.run(backend, inputs, problem)), dispatch };
    }
    declined.push(`${kernel.name}: ${support.reason}`);
  }
  const why = declined.length > 0 ? declined.join('; ') : `no fused kernel for ${backend.info.name}`;
  if (implementation === 'fused') {
    throw new ConfigError({ fn: problem.fn, expected: "a fused kernel that accepts these inputs (or implementation 'auto')", got: `none: ${why}` });
  }
  return { ...(await composedAttention(backend, inputs, problem)), dispatch: { implementation: 'composed', declined: why } };
}
