export { attention, blockSparseAttention, sparseAttention } from './attention.js';
export type {
  AttentionImplementation,
  AttentionOptions,
  AttentionResult,
  BlockSparseAttentionOptions,
  DispatchReport,
  KeyLayout,
  MaskKind,
  SparseAttentionOptions,
} from './types.js';
export type { AttentionInputs, AttentionOutputs, AttentionProblem, FusedAttentionKernel, KernelSupport, KeySelection } from './problem.js';
export { attentionReference, type HostBias, type HostKV, type HostQuery, type KeySelector, type ReferenceOptions } from './reference.js';
