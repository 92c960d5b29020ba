// The lightning indexer's weights, found under DeepSeek's names (`indexer.wq_b`, `indexer.wk`,
// `indexer.k_norm`, `indexer.weights_proj` in `inference/model.py`) or Hugging Face's
// (`self_attn.indexer.wq_b.weight`, …, `k_norm.weight` / `k_norm.bias`). Both store [out, in]
// matrices with the same row order, so names relative to the indexer are the same in both
// checkpoints; only the layer prefix differs (`layers.3.attn.` vs `model.layers.3.self_attn.`).

import { type Backend, BackendError, ConfigError, DTypeError, type DType, ShapeError, type Tensor, formatShape } from '@attnkit/tensor-core';
import type { ResolvedIndexerConfig } from './config.js';

export interface LightningIndexerWeights {
  /** `[H_I·D_I, Cq]`: q_I = wq_b · qr, rows of head j are j·D_I … (j+1)·D_I − 1. */
  readonly wqB: Tensor;
  /** `[D_I, dim]`: the one key per token, k_I = LayerNorm(wk · x). */
  readonly wk: Tensor;
  /** LayerNorm weight [D_I]. */
  readonly kNormWeight: Tensor;
  /** LayerNorm bias [D_I]. */
  readonly kNormBias: Tensor;
  /** `[H_I, dim]`: the per-token head weights before scaling (DeepSeek keeps it in bf16/fp32, never fp8). */
  readonly weightsProj: Tensor;
}

type Slot = keyof LightningIndexerWeights;

/** Each weight's key relative to the indexer (DeepSeek and Hugging Face agree; `.weight` may be left off). */
export const INDEXER_WEIGHT_NAMES: Readonly<Record<Slot, string>> = Object.freeze({
  wqB: 'wq_b.weight',
  wk: 'wk.weight',
  kNormWeight: 'k_norm.weight',
  kNormBias: 'k_norm.bias',
  weightsProj: 'weights_proj.weight',
});

const SLOTS: readonly Slot[] = ['wqB', 'wk', 'kNormWeight', 'kNormBias', 'weightsProj'];
const LINEAR_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'int8', 'fp8e4m3'];
const FLOAT_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16'];

export interface IndexerWeightRecordOptions {
  /** Common prefix of the indexer's keys, e.g. `layers.3.attn.indexer.` or `model.layers.3.self_attn.indexer.`. Keys without it are ignored. */
  readonly prefix?: string;
}

/**
 * Picks the indexer's weights out of a name → tensor record. Every key under the prefix must be
 * one of them (`wq_b`, `wk`, `k_norm.weight` (or `k_norm`), `k_norm.bias`, `weights_proj`, with
 * or without `.weight`), and each must appear once.
 */
export function indexerWeightsFromRecord(record: Readonly<Record<string, Tensor>>, options: IndexerWeightRecordOptions = {}): LightningIndexerWeights {
  const fn = 'indexerWeightsFromRecord';
  const prefix = options.prefix ?? '';
  const found = new Map<Slot, { key: string; tensor: Tensor }>();
  const unknown: string[] = [];
  for (const [key, tensor] of Object.entries(record)) {
    if (!key.startsWith(prefix)) continue;
    const name = key.slice(prefix.length);
    const slot = SLOTS.find((s) => INDEXER_WEIGHT_NAMES[s] === name || (INDEXER_WEIGHT_NAMES[s].endsWith('.weight') && INDEXER_WEIGHT_NAMES[s].slice(0, -'.weight'.length) === name));
    if (!slot) {
      unknown.push(key);
      continue;
    }
    const previous = found.get(slot);
    if (previous) throw new ConfigError({ fn, expected: `one tensor for "${prefix}${INDEXER_WEIGHT_NAMES[slot]}"`, got: `both "${previous.key}" and "${key}"` });
    found.set(slot, { key, tensor });
  }
  if (unknown.length > 0) {
    throw new ConfigError({ fn, expected: `only indexer weights under prefix "${prefix}" (${SLOTS.map((s) => INDEXER_WEIGHT_NAMES[s]).join(', ')})`, got: unknown.map((k) => `"${k}"`).join(', ') });
  }
  const take = (slot: Slot): Tensor => {
    const entry = found.get(slot);
    if (!entry) {
      const present = [...found.values()].map((e) => `"${e.key}"`).join(', ') || 'none';
      throw new ConfigError({ fn, expected: `a weight "${prefix}${INDEXER_WEIGHT_NAMES[slot]}"`, got: `none (found ${present})` });
    }
    return entry.tensor;
  };
  return { wqB: take('wqB'), wk: take('wk'), kNormWeight: take('kNormWeight'), kNormBias: take('kNormBias'), weightsProj: take('weightsProj') };
}

/** Checks every weight's shape and dtype against the config, and that all live on `backend`. */
export function validateIndexerWeights(fn: string, weights: LightningIndexerWeights, config: ResolvedIndexerConfig, backend: Backend): void {
  const { dim, qLoraRank: Cq, indexNHeads: HI, indexHeadDim: DI } = config;
  const check = (slot: Slot, shape: readonly number[], formula: string, dtypes: readonly DType[]): void => {
    const t = weights[slot];
    const what = `indexer weight "${INDEXER_WEIGHT_NAMES[slot]}"`;
    t.assertAlive(fn);
    if (t.backend !== backend) throw new BackendError({ fn, expected: `${what} on ${backend.info.name}`, got: `a tensor on ${t.backend.info.name}` });
    if (!dtypes.includes(t.dtype)) throw new DTypeError({ fn, expected: `${what} of dtype ${dtypes.join('/')}`, got: t.dtype });
    if (t.rank !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
      throw new ShapeError({ fn, expected: `${what} of shape ${formula} = ${formatShape(shape)}`, got: formatShape(t.shape) });
    }
  };
  check('wqB', [HI * DI, Cq], '[indexNHeads·indexHeadDim, qLoraRank]', LINEAR_DTYPES);
  check('wk', [DI, dim], '[indexHeadDim, dim]', LINEAR_DTYPES);
  check('kNormWeight', [DI], '[indexHeadDim]', FLOAT_DTYPES);
  check('kNormBias', [DI], '[indexHeadDim]', FLOAT_DTYPES);
  check('weightsProj', [HI, dim], '[indexNHeads, dim]', LINEAR_DTYPES);
}

export function indexerWeightTensors(weights: LightningIndexerWeights): Tensor[] {
  return SLOTS.map((s) => weights[s]);
}
