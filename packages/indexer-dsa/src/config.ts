// Configuration of DeepSeek Sparse Attention (spec §3): MLA's config (§2) plus the lightning
// indexer's head count, head dim and top-k. Short names used in comments: H_I = indexNHeads,
// D_I = indexHeadDim, dr = qkRopeHeadDim (shared with MLA), Cq = qLoraRank.

import { DEEPSEEK_V3_MLA, type MLAConfig, type MLAYarnConfig, type ResolvedMLAConfig, resolveMLAConfig } from '@attnkit/attention-mla';
import { defaultBlockSize } from '@attnkit/kvcache';
import { ConfigError } from '@attnkit/tensor-core';

/**
 * How the indexer scores are computed. `exact`: in f32 from the keys as computed (what the golden
 * vectors and DeepSeek's training math define). `fp8`: as deployed — queries and keys are
 * Hadamard-rotated, then quantised to fp8-e4m3 with one scale per block of 128 values (the key
 * cache must store fp8e4m3); the scores are those of the dequantised vectors.
 */
export type IndexPrecision = 'exact' | 'fp8';

/** The lightning indexer of one layer. Rope settings and the model width are MLA's. */
export interface LightningIndexerConfig {
  /** Model width `dim`: the input of `wk` and `weights_proj` (V3.2: 7168). */
  readonly dim: number;
  /** Query latent width `q_lora_rank` Cq: the input of the indexer's `wq_b` (V3.2: 1536). Must be > 0. */
  readonly qLoraRank: number;
  /** Indexer heads `index_n_heads` H_I (V3.2: 64). */
  readonly indexNHeads: number;
  /** Indexer head dim `index_head_dim` D_I, ≥ dr (V3.2: 128). */
  readonly indexHeadDim: number;
  /** Tokens each query keeps, `index_topk` (V3.2: 2048); a query with fewer visible tokens keeps them all. */
  readonly indexTopk: number;
  /** Rotary width dr: MLA's `qk_rope_head_dim` (V3.2: 64). The indexer rotates the FIRST dr channels, half-split pairs. */
  readonly qkRopeHeadDim: number;
  /** RoPE base θ, shared with MLA (10000). */
  readonly ropeTheta: number;
  /** `max_seq_len`, shared with MLA: positions 0..maxSeqLen−1; switches YaRN on iff > yarn.originalSeqLen. */
  readonly maxSeqLen: number;
  /** YaRN frequency interpolation, shared with MLA (the indexer has no softmax, so `mscale` is unused here). */
  readonly yarn: MLAYarnConfig;
  /** LayerNorm epsilon of `k_norm` (1e-6). */
  readonly normEps: number;
  /** `exact` (default) or `fp8` (deployed emulation: Hadamard rotation + fp8-e4m3 with 128-value block scales). */
  readonly indexPrecision: IndexPrecision;
}

export type LightningIndexerConfigInput = Partial<Omit<LightningIndexerConfig, 'yarn'>> & { readonly yarn?: Partial<MLAYarnConfig> };

export interface ResolvedIndexerConfig extends LightningIndexerConfig {
  /** maxSeqLen > yarn.originalSeqLen (DeepSeek's rule, as for MLA). */
  readonly yarnActive: boolean;
  /** H_I^−1/2 · D_I^−1/2: multiplies weights_proj(x) into the head weights w_j (spec §3 step 4). */
  readonly headWeightScale: number;
  /** Values per fp8 scale along a head (128, or D_I when narrower): DeepSeek's `block_size`. */
  readonly quantBlockSize: number;
}

/** A DSA layer: MLA plus its lightning indexer. */
export interface DSAConfig extends MLAConfig {
  readonly indexNHeads: number;
  readonly indexHeadDim: number;
  readonly indexTopk: number;
  readonly indexPrecision: IndexPrecision;
}

export type DSAConfigInput = Partial<Omit<DSAConfig, 'yarn'>> & { readonly yarn?: Partial<MLAYarnConfig> };

export interface ResolvedDSAConfig extends ResolvedMLAConfig {
  readonly indexNHeads: number;
  readonly indexHeadDim: number;
  readonly indexTopk: number;
  readonly indexPrecision: IndexPrecision;
  /** The indexer's view of the same settings. */
  readonly indexer: ResolvedIndexerConfig;
}

/**
 * DeepSeek-V3.2-Exp (`config_671B_v3.2.json`): V3's MLA with a 64-head, 128-dim indexer keeping
 * 2048 tokens per query. `ModelArgs`' own defaults have q_lora_rank 0, which DSA cannot use, so
 * this release config is the default here.
 */
export const DEEPSEEK_V32_DSA: DSAConfig = Object.freeze({
  ...DEEPSEEK_V3_MLA,
  indexNHeads: 64,
  indexHeadDim: 128,
  indexTopk: 2048,
  indexPrecision: 'exact',
});

export const DSA_DEFAULTS: DSAConfig = DEEPSEEK_V32_DSA;

/** The indexer of DeepSeek-V3.2-Exp. */
export const INDEXER_DEFAULTS: LightningIndexerConfig = indexerPart(DEEPSEEK_V32_DSA);

const fail = (fn: string, expected: string, got: unknown): never => {
  throw new ConfigError({ fn, expected, got: String(got) });
};

/** Fills in the V3.2 defaults and checks every value. */
export function resolveIndexerConfig(input: LightningIndexerConfigInput = {}): ResolvedIndexerConfig {
  return resolveIndexer('resolveIndexerConfig', input);
}

/** MLA's config plus the indexer's; checks both, and that DSA can run (qLoraRank > 0). */
export function resolveDSAConfig(input: DSAConfigInput = {}): ResolvedDSAConfig {
  const d = DSA_DEFAULTS;
  // Field by field, so that an explicit `undefined` also means "the default" (V3.2's, not MLA's).
  const mla = resolveMLAConfig({
    dim: input.dim ?? d.dim,
    nHeads: input.nHeads ?? d.nHeads,
    qLoraRank: input.qLoraRank ?? d.qLoraRank,
    kvLoraRank: input.kvLoraRank ?? d.kvLoraRank,
    qkNopeHeadDim: input.qkNopeHeadDim ?? d.qkNopeHeadDim,
    qkRopeHeadDim: input.qkRopeHeadDim ?? d.qkRopeHeadDim,
    vHeadDim: input.vHeadDim ?? d.vHeadDim,
    ropeTheta: input.ropeTheta ?? d.ropeTheta,
    maxSeqLen: input.maxSeqLen ?? d.maxSeqLen,
    yarn: { ...d.yarn, ...withoutUndefined(input.yarn ?? {}) },
    normEps: input.normEps ?? d.normEps,
  });
  const indexer = resolveIndexer('resolveDSAConfig', {
    dim: mla.dim,
    qLoraRank: mla.qLoraRank,
    indexNHeads: input.indexNHeads ?? d.indexNHeads,
    indexHeadDim: input.indexHeadDim ?? d.indexHeadDim,
    indexTopk: input.indexTopk ?? d.indexTopk,
    qkRopeHeadDim: mla.qkRopeHeadDim,
    ropeTheta: mla.ropeTheta,
    maxSeqLen: mla.maxSeqLen,
    yarn: mla.yarn,
    normEps: mla.normEps,
    indexPrecision: input.indexPrecision ?? d.indexPrecision,
  });
  return Object.freeze({
    ...mla,
    indexNHeads: indexer.indexNHeads,
    indexHeadDim: indexer.indexHeadDim,
    indexTopk: indexer.indexTopk,
    indexPrecision: indexer.indexPrecision,
    indexer,
  });
}

/** Elements one token occupies per layer: MLA's latent row plus the indexer key (V3.2: 576 + 128 = 704). */
export function dsaCacheElementsPerToken(config: DSAConfigInput): { latent: number; indexKey: number; total: number } {
  const c = resolveDSAConfig(config);
  return { latent: c.latentRowDim, indexKey: c.indexHeadDim, total: c.latentRowDim + c.indexHeadDim };
}

function resolveIndexer(fn: string, input: LightningIndexerConfigInput): ResolvedIndexerConfig {
  const d = INDEXER_DEFAULTS;
  const c: LightningIndexerConfig = {
    dim: input.dim ?? d.dim,
    qLoraRank: input.qLoraRank ?? d.qLoraRank,
    indexNHeads: input.indexNHeads ?? d.indexNHeads,
    indexHeadDim: input.indexHeadDim ?? d.indexHeadDim,
    indexTopk: input.indexTopk ?? d.indexTopk,
    qkRopeHeadDim: input.qkRopeHeadDim ?? d.qkRopeHeadDim,
    ropeTheta: input.ropeTheta ?? d.ropeTheta,
    maxSeqLen: input.maxSeqLen ?? d.maxSeqLen,
    yarn: { ...d.yarn, ...withoutUndefined(input.yarn ?? {}) },
    normEps: input.normEps ?? d.normEps,
    indexPrecision: input.indexPrecision ?? d.indexPrecision,
  };
  const positiveInt = (name: keyof LightningIndexerConfig, why = ''): void => {
    const v = c[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(fn, `${name} to be a positive integer${why}`, v);
  };
  positiveInt('dim');
  positiveInt('qLoraRank', ' (DSA needs the query latent q_norm(wq_a·x): qLoraRank > 0)');
  positiveInt('indexNHeads');
  positiveInt('indexHeadDim');
  positiveInt('indexTopk', ' (tokens kept per query)');
  positiveInt('qkRopeHeadDim');
  if (c.qkRopeHeadDim > c.indexHeadDim) {
    fail(fn, `qkRopeHeadDim ≤ indexHeadDim (the indexer rotates the first dr of its ${c.indexHeadDim} channels)`, c.qkRopeHeadDim);
  }
  if (c.indexPrecision !== 'exact' && c.indexPrecision !== 'fp8') fail(fn, "indexPrecision 'exact' or 'fp8'", c.indexPrecision);
  if (c.indexPrecision === 'fp8' && (c.indexHeadDim & (c.indexHeadDim - 1)) !== 0) {
    fail(fn, 'a power-of-two indexHeadDim with indexPrecision fp8 (the Sylvester Hadamard rotation)', c.indexHeadDim);
  }
  // The rope and YaRN fields are MLA's: MLA's resolver checks them (even dr, θ > 1, YaRN betas).
  const rope = resolveMLAConfig({ qkRopeHeadDim: c.qkRopeHeadDim, ropeTheta: c.ropeTheta, maxSeqLen: c.maxSeqLen, yarn: c.yarn, normEps: c.normEps });
  return Object.freeze({
    ...c,
    yarn: rope.yarn,
    yarnActive: rope.yarnActive,
    headWeightScale: (c.indexNHeads * c.indexHeadDim) ** -0.5,
    quantBlockSize: defaultBlockSize(c.indexHeadDim),
  });
}

function indexerPart(c: DSAConfig): LightningIndexerConfig {
  return {
    dim: c.dim,
    qLoraRank: c.qLoraRank,
    indexNHeads: c.indexNHeads,
    indexHeadDim: c.indexHeadDim,
    indexTopk: c.indexTopk,
    qkRopeHeadDim: c.qkRopeHeadDim,
    ropeTheta: c.ropeTheta,
    maxSeqLen: c.maxSeqLen,
    yarn: c.yarn,
    normEps: c.normEps,
    indexPrecision: c.indexPrecision,
  };
}

/** The YaRN fields that are set (an explicit undefined means "the default"). */
function withoutUndefined(y: Partial<MLAYarnConfig>): Partial<MLAYarnConfig> {
  return {
    ...(y.factor === undefined ? {} : { factor: y.factor }),
    ...(y.originalSeqLen === undefined ? {} : { originalSeqLen: y.originalSeqLen }),
    ...(y.betaFast === undefined ? {} : { betaFast: y.betaFast }),
    ...(y.betaSlow === undefined ? {} : { betaSlow: y.betaSlow }),
    ...(y.mscale === undefined ? {} : { mscale: y.mscale }),
  };
}
