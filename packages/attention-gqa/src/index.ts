export {
  GroupedQueryAttention,
  MultiQueryAttention,
  type GroupedQueryAttentionConfig,
  type MultiQueryAttentionConfig,
} from './grouped-query-attention.js';
export type { AttentionCall, AttentionLayerConfig, AttentionLayerOptions, AttentionWeightRecord, RopeSettings } from '@attnkit/attention-mha';
