export type { CacheView, KVCache } from './types.js';
