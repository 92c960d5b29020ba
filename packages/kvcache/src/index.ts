export type { CacheView, KVCache, RowOptions, StorageDType, StorageOptions, ValueLayout } from './types.js';
export { defaultBlockSize, type RowLayout } from './layout.js';
export { ContiguousKVCache, type ContiguousKVCacheOptions } from './contiguous.js';
export { MLALatentCache, type MLALatentCacheOptions } from './mla.js';
export { IndexerKeyCache, type IndexerKeyCacheOptions } from './indexer.js';
export {
  NSACache,
  compressedCount,
  type NSACacheOptions,
  type NSACacheView,
  type NSACompressedBlocks,
  type NSACompressedView,
  type NSACompressionBatch,
  type NSACompressor,
} from './nsa.js';
