export {
  NSA_PAPER_DEFAULTS,
  compressedBlockCount,
  keysReadPerStep,
  resolveNSAConfig,
  selectionBlockCount,
  visibleCompressedBlocks,
  type CompressionKind,
  type NSAConfig,
  type ResolvedNSAConfig,
} from './config.js';
export { validateNSAWeights, type CompressorMLP, type NSAWeights } from './weights.js';
export { compressBlocks, type Compressor } from './compress.js';
export { toSelectionBlocks } from './compressed.js';
export { selectBlocks, selectedAttention } from './selection.js';
export { combineBranches, nsaGates } from './gates.js';
export { QueryPositions } from './positions.js';
export { nativeSparseAttention, type CompressedKV, type NSAOptions, type NSAResult, type NSAStages } from './nsa.js';
export { NativeSparseAttention, type NSAForwardOptions } from './layer.js';
export type { NSAKVCache } from './cache.js';
