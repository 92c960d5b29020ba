// The hyperparameters of one MLA layer, with DeepSeek's `ModelArgs` defaults and names mapped
// to camelCase (spec §2). Short names used in comments: dn = qkNopeHeadDim, dr = qkRopeHeadDim,
// dv = vHeadDim, C = kvLoraRank, Cq = qLoraRank, H = nHeads.

import { ConfigError, yarnSoftmaxScale } from '@attnkit/tensor-core';

/** DeepSeek's YaRN settings (`precompute_freqs_cis`). */
export interface MLAYarnConfig {
  /** `rope_factor` s: how much the context was stretched (V3: 40). */
  readonly factor: number;
  /** `original_seq_len` L0: the pre-training context (V3: 4096). */
  readonly originalSeqLen: number;
  /** `beta_fast`: rotations over L0 below which a pair is fully interpolated (V3: 32). */
  readonly betaFast: number;
  /** `beta_slow` (V3: 1). */
  readonly betaSlow: number;
  /** Softmax-scale correction `mscale` (V3: 1.0; V2-Lite / 16B: 0.707). */
  readonly mscale: number;
}

export interface MLAConfig {
  /** Model width `dim` (V3: 7168). */
  readonly dim: number;
  /** Query heads `n_heads` H (V3: 128). */
  readonly nHeads: number;
  /** Query compression rank `q_lora_rank` Cq; 0 means a plain `wq` projection (V2-Lite). V3: 1536. */
  readonly qLoraRank: number;
  /** Latent width `kv_lora_rank` C, what the cache stores per token besides k_pe (V3: 512). */
  readonly kvLoraRank: number;
  /** Per-head query/key channels without position `qk_nope_head_dim` dn (V3: 128). */
  readonly qkNopeHeadDim: number;
  /** Per-head rotary channels `qk_rope_head_dim` dr, even; the rope key is shared by all heads (V3: 64). */
  readonly qkRopeHeadDim: number;
  /** Per-head value channels `v_head_dim` dv (V3: 128). */
  readonly vHeadDim: number;
  /** RoPE base θ (`rope_theta`, 10000). */
  readonly ropeTheta: number;
  /**
   * `max_seq_len`: the longest sequence the layer serves (positions 0..maxSeqLen−1). As in
   * DeepSeek it also switches YaRN on: YaRN is active iff maxSeqLen > yarn.originalSeqLen.
   */
  readonly maxSeqLen: number;
  readonly yarn: MLAYarnConfig;
  /** RMSNorm epsilon of q_norm and kv_norm (1e-6). */
  readonly normEps: number;
}

/** What `resolveMLAConfig` accepts: any subset (absent or undefined fields take the defaults); `yarn` may be partial too. */
export type MLAConfigInput = Partial<Omit<MLAConfig, 'yarn'>> & { readonly yarn?: Partial<MLAYarnConfig> };

/** DeepSeek-V3 `ModelArgs` defaults (a 16B-class layer; max_seq_len 4·4096, so YaRN is on). */
export const MLA_DEFAULTS: MLAConfig = Object.freeze({
  dim: 2048,
  nHeads: 16,
  qLoraRank: 0,
  kvLoraRank: 512,
  qkNopeHeadDim: 128,
  qkRopeHeadDim: 64,
  vHeadDim: 128,
  ropeTheta: 10000,
  maxSeqLen: 4096 * 4,
  yarn: Object.freeze({ factor: 40, originalSeqLen: 4096, betaFast: 32, betaSlow: 1, mscale: 1 }),
  normEps: 1e-6,
});

/** DeepSeek-V3 / R1 (671B, `config_671B.json`): 576 cached values per token per layer. */
export const DEEPSEEK_V3_MLA: MLAConfig = Object.freeze({ ...MLA_DEFAULTS, dim: 7168, nHeads: 128, qLoraRank: 1536 });

/** DeepSeek-V2-Lite / 16B (`config_16B.json`): no query compression, mscale 0.707. */
export const DEEPSEEK_V2_LITE_MLA: MLAConfig = Object.freeze({ ...MLA_DEFAULTS, yarn: Object.freeze({ ...MLA_DEFAULTS.yarn, mscale: 0.707 }) });

/** A validated config plus the sizes every part of the layer derives from it. */
export interface ResolvedMLAConfig extends MLAConfig {
  /** dn + dr: the query/key head dim of the naive form, and the one the softmax scale uses. */
  readonly qkHeadDim: number;
  /** C + dr: one cached row per token, [c ‖ k_pe]. */
  readonly latentRowDim: number;
  /** maxSeqLen > yarn.originalSeqLen. */
  readonly yarnActive: boolean;
  /** σ = (dn+dr)^−1/2, times (0.1·mscale·ln s + 1)² when YaRN is active (spec §2 step 4). */
  readonly softmaxScale: number;
}

/** Fills in DeepSeek's defaults, checks every value and derives the layer's sizes. */
export function resolveMLAConfig(input: MLAConfigInput = {}): ResolvedMLAConfig {
  const fn = 'resolveMLAConfig';
  // Field by field, so that an explicit `undefined` also means "the default".
  const d = MLA_DEFAULTS;
  const y = input.yarn ?? {};
  const yarn: MLAYarnConfig = {
    factor: y.factor ?? d.yarn.factor,
    originalSeqLen: y.originalSeqLen ?? d.yarn.originalSeqLen,
    betaFast: y.betaFast ?? d.yarn.betaFast,
    betaSlow: y.betaSlow ?? d.yarn.betaSlow,
    mscale: y.mscale ?? d.yarn.mscale,
  };
  const c: MLAConfig = {
    dim: input.dim ?? d.dim,
    nHeads: input.nHeads ?? d.nHeads,
    qLoraRank: input.qLoraRank ?? d.qLoraRank,
    kvLoraRank: input.kvLoraRank ?? d.kvLoraRank,
    qkNopeHeadDim: input.qkNopeHeadDim ?? d.qkNopeHeadDim,
    qkRopeHeadDim: input.qkRopeHeadDim ?? d.qkRopeHeadDim,
    vHeadDim: input.vHeadDim ?? d.vHeadDim,
    ropeTheta: input.ropeTheta ?? d.ropeTheta,
    maxSeqLen: input.maxSeqLen ?? d.maxSeqLen,
    yarn,
    normEps: input.normEps ?? d.normEps,
  };
  const bad = (expected: string, got: unknown): never => {
    throw new ConfigError({ fn, expected, got: String(got) });
  };
  const positiveInt = (name: keyof MLAConfig): void => {
    const v = c[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) bad(`${name} to be a positive integer`, v);
  };
  positiveInt('dim');
  positiveInt('nHeads');
  positiveInt('kvLoraRank');
  positiveInt('qkNopeHeadDim');
  positiveInt('qkRopeHeadDim');
  positiveInt('vHeadDim');
  positiveInt('maxSeqLen');
  if (!Number.isInteger(c.qLoraRank) || c.qLoraRank < 0) bad('qLoraRank to be an integer ≥ 0 (0: no query compression)', c.qLoraRank);
  if (c.qkRopeHeadDim % 2 !== 0) bad('an even qkRopeHeadDim (RoPE turns channel pairs)', c.qkRopeHeadDim);
  if (!(c.ropeTheta > 1) || !Number.isFinite(c.ropeTheta)) bad('ropeTheta > 1', c.ropeTheta);
  if (!(c.normEps > 0) || !Number.isFinite(c.normEps)) bad('normEps > 0', c.normEps);
  if (!(yarn.factor >= 1) || !Number.isFinite(yarn.factor)) bad('yarn.factor ≥ 1', yarn.factor);
  if (!Number.isInteger(yarn.originalSeqLen) || yarn.originalSeqLen < 1) bad('yarn.originalSeqLen to be a positive integer', yarn.originalSeqLen);
  if (!(yarn.betaFast > 0) || !(yarn.betaSlow > 0) || !(yarn.betaFast > yarn.betaSlow)) {
    bad('yarn.betaFast > yarn.betaSlow > 0', `${yarn.betaFast} / ${yarn.betaSlow}`);
  }
  if (!(yarn.mscale >= 0) || !Number.isFinite(yarn.mscale)) bad('yarn.mscale ≥ 0', yarn.mscale);

  const qkHeadDim = c.qkNopeHeadDim + c.qkRopeHeadDim;
  const yarnActive = c.maxSeqLen > yarn.originalSeqLen;
  const softmaxScale = qkHeadDim ** -0.5 * (yarnActive ? yarnSoftmaxScale(yarn) : 1);
  return Object.freeze({ ...c, yarn: Object.freeze(yarn), qkHeadDim, latentRowDim: c.kvLoraRank + c.qkRopeHeadDim, yarnActive, softmaxScale });
}

/**
 * Elements one token occupies in the cache of one layer: the latent form (what this package
 * caches) and the expanded per-head K/V of the naive form / an MHA cache with the same head
 * dims. DeepSeek-V3: 576 vs 40 960.
 */
export function mlaCacheElementsPerToken(config: MLAConfigInput): { latent: number; expanded: number } {
  const c = resolveMLAConfig(config);
  return { latent: c.latentRowDim, expanded: c.nHeads * (c.qkHeadDim + c.vHeadDim) };
}
