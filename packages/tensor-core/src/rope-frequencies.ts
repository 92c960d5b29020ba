// Rotary frequencies, with DeepSeek's YaRN interpolation (spec §0, `precompute_freqs_cis`).

import { ConfigError } from './errors.js';

export interface YarnConfig {
  /** s: how much longer than the original context the model runs (DeepSeek-V3: 40). */
  readonly factor: number;
  /** L0: the context length the model was pre-trained with (DeepSeek-V3: 4096). */
  readonly originalSeqLen: number;
  /** Fast boundary, in rotations over L0 (DeepSeek-V3: 32). */
  readonly betaFast: number;
  /** Slow boundary (DeepSeek-V3: 1). */
  readonly betaSlow: number;
  /** Softmax-scale correction factor (`mscale`; V3: 1.0, V2-Lite/16B: 0.707). */
  readonly mscale?: number;
}

export interface RopeConfig {
  /** Width of the rotated slice (even). */
  readonly dim: number;
  /** θ (default 10000). */
  readonly theta?: number;
  /** YaRN, applied only when given. DeepSeek turns it on iff max_seq_len > original_seq_len. */
  readonly yarn?: YarnConfig | null;
}

/**
 * inv_freq[i] = θ^(−2i/dim) for i < dim/2, YaRN-interpolated when configured: pairs below
 * `low` keep their frequency, pairs above `high` are divided by `factor`, a linear ramp between.
 * Computed in float64 and rounded once to f32.
 */
export function ropeInvFreq(config: RopeConfig): Float32Array {
  const { dim } = config;
  const theta = config.theta ?? 10000;
  if (!Number.isInteger(dim) || dim <= 0 || dim % 2 !== 0) {
    throw new ConfigError({ fn: 'ropeInvFreq', expected: 'a positive even rotary width', got: String(dim) });
  }
  if (!(theta > 1)) throw new ConfigError({ fn: 'ropeInvFreq', expected: 'rope theta > 1', got: String(theta) });
  const half = dim / 2;
  const freqs = new Float64Array(half);
  for (let i = 0; i < half; i++) freqs[i] = 1 / theta ** ((2 * i) / dim);
  const yarn = config.yarn;
  if (yarn) {
    validateYarn(yarn);
    const correctionDim = (rotations: number): number =>
      (dim * Math.log(yarn.originalSeqLen / (rotations * 2 * Math.PI))) / (2 * Math.log(theta));
    const low = Math.max(Math.floor(correctionDim(yarn.betaFast)), 0);
    let high = Math.min(Math.ceil(correctionDim(yarn.betaSlow)), dim - 1);
    if (low === high) high += 0.001;
    for (let i = 0; i < half; i++) {
      const ramp = Math.min(1, Math.max(0, (i - low) / (high - low)));
      const f = freqs[i] as number;
      freqs[i] = (f * ramp) / yarn.factor + f * (1 - ramp);
    }
  }
  return Float32Array.from(freqs);
}

/** DeepSeek's softmax-scale multiplier under YaRN: (0.1·mscale·ln s + 1)², or 1 without YaRN. */
export function yarnSoftmaxScale(yarn: YarnConfig | null | undefined): number {
  if (!yarn || yarn.factor <= 1) return 1;
  const m = 0.1 * (yarn.mscale ?? 1) * Math.log(yarn.factor) + 1;
  return m * m;
}

function validateYarn(yarn: YarnConfig): void {
  const bad = (expected: string, got: unknown): never => {
    throw new ConfigError({ fn: 'ropeInvFreq', expected, got: String(got) });
  };
  if (!(yarn.factor >= 1)) bad('yarn.factor ≥ 1', yarn.factor);
  if (!(yarn.originalSeqLen > 0)) bad('yarn.originalSeqLen > 0', yarn.originalSeqLen);
  if (!(yarn.betaFast > 0) || !(yarn.betaSlow > 0)) bad('yarn betas > 0', `${yarn.betaFast}/${yarn.betaSlow}`);
}
