// DSA configs from the two checkpoint formats: DeepSeek's `inference/config_671B_v3.2.json`
// (`ModelArgs` names) and Hugging Face's `config.json` (`DeepseekV32Config`). Both name the
// indexer fields alike: `index_n_heads`, `index_head_dim`, `index_topk`.

import { mlaConfigFromDeepSeek, mlaConfigFromHuggingFace } from '@attnkit/attention-mla';
import { FormatError } from '@attnkit/tensor-core';
import { DSA_DEFAULTS, type IndexPrecision, type ResolvedDSAConfig, resolveDSAConfig } from './config.js';

export interface CheckpointConfigOptions {
  /** How the indexer scores are computed (not part of either file): `exact` (default) or `fp8`. */
  readonly indexPrecision?: IndexPrecision;
}

/** From DeepSeek's inference config; absent index fields take V3.2's values (64, 128, 2048). */
export function dsaConfigFromDeepSeek(json: unknown, options: CheckpointConfigOptions = {}): ResolvedDSAConfig {
  return withIndexer('dsaConfigFromDeepSeek', mlaConfigFromDeepSeek(json), json, options);
}

/** From a Hugging Face `config.json` of DeepSeek-V3.2 (MLA fields as in `mlaConfigFromHuggingFace`). */
export function dsaConfigFromHuggingFace(json: unknown, options: CheckpointConfigOptions = {}): ResolvedDSAConfig {
  return withIndexer('dsaConfigFromHuggingFace', mlaConfigFromHuggingFace(json), json, options);
}

function withIndexer(fn: string, mla: Omit<ResolvedDSAConfig, 'indexNHeads' | 'indexHeadDim' | 'indexTopk' | 'indexPrecision' | 'indexer'>, json: unknown, options: CheckpointConfigOptions): ResolvedDSAConfig {
  const num = (key: string): number | undefined => {
    if (typeof json !== 'object' || json === null) return undefined;
    const v: unknown = Reflect.get(json, key);
    if (v === undefined || v === null) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new FormatError({ fn, expected: `"${key}" to be a number`, got: JSON.stringify(v) });
    return v;
  };
  return resolveDSAConfig({
    ...mla,
    indexNHeads: num('index_n_heads') ?? DSA_DEFAULTS.indexNHeads,
    indexHeadDim: num('index_head_dim') ?? DSA_DEFAULTS.indexHeadDim,
    indexTopk: num('index_topk') ?? DSA_DEFAULTS.indexTopk,
    indexPrecision: options.indexPrecision ?? 'exact',
  });
}
