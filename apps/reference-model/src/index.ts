// @attnkit/reference-model: the browser-safe API (no node:fs): load a checkpoint from an
// in-memory map of file name → bytes, run it, generate. Node helpers that read folders are in
// '@attnkit/reference-model/node'.
//
//   const files = new Map([['config.json', bytes1], ['model.safetensors', bytes2]]);
//   using model = await Model.load(backend, files);
//   const { text } = await generate(model, 'The ', { maxTokens: 64, temperature: 0.8, topK: 40, seed: 1,
//     onToken: (t) => append(t.text) });

export { Model, kvCacheConfig, type CacheOptions, type ForwardOptions } from './model/model.js';
export { ModelCache } from './model/cache.js';
export { CONFIG_DEFAULTS, parseModelConfig, type AttentionKind, type ModelConfig, type ModelType } from './model/config.js';
export { INDEX_FILE, SINGLE_FILE, checkTensors, readCheckpoint, type Checkpoint, type CheckpointFiles } from './model/checkpoint.js';
export { expectedTensors, type TensorSpec } from './model/tensor-names.js';
export type { AttentionBlock, LayerCache, LayerCacheOptions } from './model/attention/index.js';
export { generate, type GenerateOptions, type GenerationResult, type TokenEvent } from './generation/generate.js';
export { Rng, argmax, sample, validateSampling, type SamplingOptions } from './generation/sampling.js';
export { ByteTokenizer, Utf8Stream, type Tokenizer } from './generation/tokenizer.js';
export { parseSafetensors, serializeSafetensors, type SafetensorsEntry, type SafetensorsFile, type SafetensorsInput } from './io/safetensors.js';
