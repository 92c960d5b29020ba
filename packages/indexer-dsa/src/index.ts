export { DSA, type DSAForwardOptions, type DSAInspectOptions, type DSAOptions, type DSARecordOptions, type DSAResult, type DSAWeights } from './dsa.js';
export {
  LightningIndexer,
  type IndexerForwardOptions,
  type IndexerQueries,
  type IndexerSelectOptions,
  type IndexerSelection,
  type LightningIndexerOptions,
} from './indexer.js';
export { DSACache, type DSACacheLike, type DSACacheOptions } from './cache.js';
export {
  DEEPSEEK_V32_DSA,
  DSA_DEFAULTS,
  INDEXER_DEFAULTS,
  dsaCacheElementsPerToken,
  resolveDSAConfig,
  resolveIndexerConfig,
  type DSAConfig,
  type DSAConfigInput,
  type IndexPrecision,
  type LightningIndexerConfig,
  type LightningIndexerConfigInput,
  type ResolvedDSAConfig,
  type ResolvedIndexerConfig,
} from './config.js';
export { dsaConfigFromDeepSeek, dsaConfigFromHuggingFace, type CheckpointConfigOptions } from './checkpoint-config.js';
export {
  INDEXER_WEIGHT_NAMES,
  indexerWeightsFromRecord,
  validateIndexerWeights,
  type IndexerWeightRecordOptions,
  type LightningIndexerWeights,
} from './weights.js';
export { hadamardMatrix } from './hadamard.js';
export { selectedKeys, selectionMask } from './inspect.js';
export { indexerReference, type IndexerReferenceInputs, type IndexerReferenceOutputs } from './reference.js';
export type {
  FusedIndexerKernel,
  IndexerImplementation,
  IndexerScoreInputs,
  IndexerScoreOutputs,
  IndexerScoreProblem,
  KernelSupport,
} from './kernels/problem.js';
export type { IndexerDispatchReport } from './kernels/dispatch.js';
