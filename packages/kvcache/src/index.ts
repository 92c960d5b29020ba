export type { CacheView, KVCache, RowOptions, StorageDType, StorageOptions, ValueLayout } from './types.js';
export { defaultBlockSize, type RowLayout } from './layout.js';
export { ContiguousKVCache, type ContiguousKVCacheOptions } from './contiguous.js';
export { PagePool, type PagePoolOptions } from './page-pool.js';
export { PagedKVCache, type PagedKVCacheOptions } from './paged.js';
export { SlidingWindowKVCache, type SlidingWindowKVCacheOptions } from './sliding-window.js';
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
export {
  formatBytes,
  kvBytes,
  kvBytesPerToken,
  kvElementsPerToken,
  kvRowParts,
  type DSAKVConfig,
  type DenseKVConfig,
  type KVCacheConfig,
  type KVRowPart,
  type MLAKVConfig,
  type NSAKVConfig,
} from './bytes.js';
