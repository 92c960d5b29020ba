export { MLA, type MLAAttendOptions, type MLAAttendResult, type MLAForwardOptions, type MLAOptions, type MLAProjection } from './mla.js';
export {
  DEEPSEEK_V2_LITE_MLA,
  DEEPSEEK_V3_MLA,
  MLA_DEFAULTS,
  mlaCacheElementsPerToken,
  resolveMLAConfig,
  type MLAConfig,
  type MLAConfigInput,
  type MLAYarnConfig,
  type ResolvedMLAConfig,
} from './config.js';
export { mlaConfigFromDeepSeek, mlaConfigFromHuggingFace } from './checkpoint-config.js';
export {
  MLA_WEIGHT_NAMES,
  mlaWeightsFromRecord,
  validateMLAWeights,
  type MLAQueryWeights,
  type MLAWeightRecordOptions,
  type MLAWeights,
} from './weights.js';
export { ELEMENT_COST_MACS, chooseOrder, orderCosts, type MLAOrder, type OrderCost, type OrderCostInput } from './cost.js';
