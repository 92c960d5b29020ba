// Test support for attnkit packages that build on the attention core (not part of the runtime
// API): seeded random attention problems with their float64 expectations, a host oracle of the
// projected attention layer, a minimal KVCache that implements the interface plainly, and one
// fused kernel run directly (the WGSL kernel's prefill strategies, to compare them).
export { randomProblem, type KvDType, type RandomProblem, type RandomProblemSpec, type RandomSource, type SelectionKind } from './random-problem.js';
export { layerReference, randomLayerWeights, type HostLayerWeights, type WeightNaming } from './layer-reference.js';
export { HostCache } from './host-cache.js';
export { attentionWithKernel } from './with-kernel.js';
export { createWebgpuFlashKernel, type PrefillFixupReport, type PrefillNonFinite, type WebgpuFlashOptions } from '../webgpu/webgpu-flash.js';
