// MLA configs from the two checkpoint formats: DeepSeek's `inference/configs/*.json`
// (`ModelArgs` fields) and Hugging Face's `config.json` (`DeepseekV2Config` / `DeepseekV3Config`).

import { ConfigError, FormatError } from '@attnkit/tensor-core';
import { MLA_DEFAULTS, type MLAConfigInput, type ResolvedMLAConfig, resolveMLAConfig } from './config.js';

type Json = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function reader(fn: string, json: unknown): { num: (key: string) => number | undefined; obj: (key: string) => Json | undefined } {
  if (!isObject(json)) throw new FormatError({ fn, expected: 'a JSON object', got: json === null ? 'null' : typeof json });
  return {
    num(key) {
      const v = json[key];
      if (v === undefined || v === null) return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new FormatError({ fn, expected: `"${key}" to be a number`, got: JSON.stringify(v) });
      return v;
    },
    obj(key) {
      const v = json[key];
      if (v === undefined || v === null) return undefined;
      if (!isObject(v)) throw new FormatError({ fn, expected: `"${key}" to be an object`, got: JSON.stringify(v) });
      return v;
    },
  };
}

/**
 * From DeepSeek's inference config (`config_671B.json`, `config_16B.json`): the `ModelArgs`
 * field names; absent fields take the `ModelArgs` defaults.
 */
export function mlaConfigFromDeepSeek(json: unknown): ResolvedMLAConfig {
  const r = reader('mlaConfigFromDeepSeek', json);
  const yarn = {
    factor: r.num('rope_factor'),
    originalSeqLen: r.num('original_seq_len'),
    betaFast: r.num('beta_fast'),
    betaSlow: r.num('beta_slow'),
    mscale: r.num('mscale'),
  };
  const input: MLAConfigInput = {
    dim: r.num('dim'),
    nHeads: r.num('n_heads'),
    qLoraRank: r.num('q_lora_rank'),
    kvLoraRank: r.num('kv_lora_rank'),
    qkNopeHeadDim: r.num('qk_nope_head_dim'),
    qkRopeHeadDim: r.num('qk_rope_head_dim'),
    vHeadDim: r.num('v_head_dim'),
    ropeTheta: r.num('rope_theta'),
    maxSeqLen: r.num('max_seq_len'),
  };
  return resolveMLAConfig({ ...input, yarn });
}

/**
 * From a Hugging Face `config.json` of DeepSeek-V2/V3. Mapping: `hidden_size` → dim,
 * `num_attention_heads` → nHeads, `q_lora_rank` (null → 0), `max_position_embeddings` →
 * maxSeqLen, `rms_norm_eps` → normEps, `rope_scaling` {factor, original_max_position_embeddings,
 * beta_fast, beta_slow, mscale_all_dim} → yarn (HF's `mscale_all_dim` is DeepSeek's `mscale`).
 * transformers 5 writes RoPE as `rope_parameters` {rope_type, rope_theta, and YaRN's fields}
 * instead of `rope_theta` + `rope_scaling`; both forms are read (a `rope_parameters` of type
 * `default` means no scaling).
 *
 * Hugging Face applies YaRN whenever `rope_scaling` is set, DeepSeek iff max_seq_len exceeds
 * the original length; a config where the two disagree is refused. So is one whose `mscale`
 * differs from `mscale_all_dim` (or lacks either): transformers then also scales cos/sin by
 * their ratio, which DeepSeek's reference does not do.
 */
export function mlaConfigFromHuggingFace(json: unknown): ResolvedMLAConfig {
  const fn = 'mlaConfigFromHuggingFace';
  const r = reader(fn, json);
  const maxPositions = r.num('max_position_embeddings');
  const parameters = r.obj('rope_parameters'); // transformers 5
  const parameterType = parameters ? (parameters.rope_type ?? parameters.type ?? 'default') : 'default';
  const input: MLAConfigInput = {
    dim: r.num('hidden_size'),
    nHeads: r.num('num_attention_heads'),
    qLoraRank: r.num('q_lora_rank') ?? 0,
    kvLoraRank: r.num('kv_lora_rank'),
    qkNopeHeadDim: r.num('qk_nope_head_dim'),
    qkRopeHeadDim: r.num('qk_rope_head_dim'),
    vHeadDim: r.num('v_head_dim'),
    ropeTheta: r.num('rope_theta') ?? (parameters ? reader(fn, parameters).num('rope_theta') : undefined),
    maxSeqLen: maxPositions,
    normEps: r.num('rms_norm_eps'),
  };
  const scaling = r.obj('rope_scaling') ?? (parameters && parameterType !== 'default' ? parameters : undefined);
  if (!scaling) {
    // No YaRN: make the original length the whole context so DeepSeek's rule keeps it off.
    const maxSeqLen = maxPositions ?? MLA_DEFAULTS.maxSeqLen;
    return resolveMLAConfig({ ...input, maxSeqLen, yarn: { originalSeqLen: maxSeqLen } });
  }
  const s = reader(fn, scaling);
  const type = scaling.rope_type ?? scaling.type;
  if (type !== 'yarn') throw new ConfigError({ fn, expected: "rope_scaling of type 'yarn' (DeepSeek's)", got: JSON.stringify(type) });
  const mscale = s.num('mscale');
  const mscaleAllDim = s.num('mscale_all_dim');
  if (mscale === undefined || mscaleAllDim === undefined || mscale !== mscaleAllDim) {
    throw new ConfigError({
      fn,
      expected: 'rope_scaling.mscale equal to rope_scaling.mscale_all_dim (as in every DeepSeek-V2/V3 config)',
      got: `${mscale} and ${mscaleAllDim}`,
    });
  }
  const yarn = {
    factor: s.num('factor'),
    originalSeqLen: s.num('original_max_position_embeddings'),
    betaFast: s.num('beta_fast'),
    betaSlow: s.num('beta_slow'),
    mscale: mscaleAllDim,
  };
  const resolved = resolveMLAConfig({ ...input, yarn });
  if (!resolved.yarnActive) {
    throw new ConfigError({
      fn,
      expected: 'max_position_embeddings > rope_scaling.original_max_position_embeddings when YaRN is configured',
      got: `${resolved.maxSeqLen} ≤ ${resolved.yarn.originalSeqLen}`,
    });
  }
  return resolved;
}
