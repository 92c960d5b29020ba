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
export { AttentionLayer, type AttentionCall, type AttentionLayerOptions } from './layer/attention-layer.js';
export { MultiHeadAttention, type MultiHeadAttentionConfig } from './layer/multi-head-attention.js';
export { resolveAttentionConfig, type AttentionLayerConfig, type ProjectionName, type ResolvedAttentionConfig, type ResolvedRope, type RopeSettings } from './layer/config.js';
export type { AttentionProjections, AttentionWeightRecord, Projection } from './layer/weights.js';
