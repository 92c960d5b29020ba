export { type PendingVariant, type VariantAdapter, type VariantEntry, isPending } from './adapter.js';
export { type BackendFactory, type CaseResult, type CaseStatus, type RunOptions, formatResult, runGolden, summaryLine } from './runner.js';
export { VARIANTS } from './variants/index.js';
