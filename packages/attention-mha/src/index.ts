export { attention, blockSparseAttention, sparseAttention } from './attention.js';
export type {
  AttentionOptions,
  AttentionResult,
  BlockSparseAttentionOptions,
  DispatchReport,
  KeyLayout,
  MaskKind,
  SparseAttentionOptions,
} from './types.js';
export { attentionReference, type HostBias, type HostKV, type HostQuery, type KeySelector, type ReferenceOptions } from './reference.js';
