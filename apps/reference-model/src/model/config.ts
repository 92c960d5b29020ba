// The model's configuration, parsed once from a Hugging Face-style `config.json` and checked:
// everything the rest of the model reads is a typed, resolved field. Four `model_type`s load
// (docs/checkpoint-format.md):
//
//   llama          MHA / GQA / MQA (num_key_value_heads decides), half-split RoPE
//   deepseek_v3    MLA (spec §2), interleaved RoPE on the rope slice, optional YaRN
//   deepseek_v32   MLA + DSA's lightning indexer (spec §3)
//   attnkit_nsa    NSA (spec §4) on llama's projections (our own type)
//
// Malformed values (a string where a number belongs) are FormatErrors; well-formed configs the
// model cannot run (MoE layers, another activation, unknown RoPE scaling) are ConfigErrors.

import { type ResolvedMLAConfig, mlaConfigFromHuggingFace } from '@attnkit/attention-mla';
import { type ResolvedNSAConfig, resolveNSAConfig } from '@attnkit/attention-nsa';
import { type ResolvedDSAConfig, dsaConfigFromHuggingFace } from '@attnkit/indexer-dsa';
import { ConfigError, FormatError } from '@attnkit/tensor-core';

export type ModelType = 'llama' | 'deepseek_v3' | 'deepseek_v32' | 'attnkit_nsa';
export type AttentionKind = 'mha' | 'gqa' | 'mqa' | 'mla' | 'dsa' | 'nsa';

/** Defaults of the optional `config.json` keys (Hugging Face's LlamaConfig defaults where it has one). */
export const CONFIG_DEFAULTS = {
  /** `rms_norm_eps` */
  normEps: 1e-6,
  /** `rope_theta` (or `rope_parameters.rope_theta`) */
  ropeTheta: 10000,
  /** `max_position_embeddings` */
  maxPositions: 2048,
  /** `tie_word_embeddings`: an untied LM head, as in every checkpoint this model was built for. */
  tieWordEmbeddings: false,
  /** `attention_bias` (llama, attnkit_nsa) */
  attentionBias: false,
  /** `first_k_dense_replace` (deepseek_v3 / v32): transformers' default, 3. */
  firstKDenseReplace: 3,
} as const;

export interface ModelConfig {
  readonly modelType: ModelType;
  readonly attention: AttentionKind;
  readonly vocabSize: number;
  /** Model width (`hidden_size`). */
  readonly dim: number;
  /** SwiGLU hidden width (`intermediate_size`). */
  readonly intermediateSize: number;
  readonly nLayers: number;
  /** Query heads. */
  readonly nHeads: number;
  /** Key/value heads (llama, attnkit_nsa); 1 latent "head" for MLA/DSA. */
  readonly nKvHeads: number;
  /** Query/key/value head width (llama, attnkit_nsa); for MLA/DSA see `mla`. */
  readonly headDim: number;
  readonly normEps: number;
  readonly ropeTheta: number;
  /** Longest sequence (prompt + generated tokens) the model serves. */
  readonly maxPositions: number;
  readonly tieWordEmbeddings: boolean;
  /** q/k/v/o projection biases (llama, attnkit_nsa). */
  readonly attentionBias: boolean;
  /** The resolved MLA layer config (deepseek_v3; for deepseek_v32 `dsa` extends it). */
  readonly mla: ResolvedMLAConfig | null;
  readonly dsa: ResolvedDSAConfig | null;
  readonly nsa: ResolvedNSAConfig | null;
  /** NSA's key / value intra-block position encodings exist (`nsa.pe_k`, `nsa.pe_v`). */
  readonly nsaPositionEncodings: { readonly key: boolean; readonly value: boolean };
  /** NSA φ = mlp: the compressor MLP's hidden width. */
  readonly nsaMlpHidden: number | null;
}

type Json = Readonly<Record<string, unknown>>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const FN = 'parseModelConfig';

/** Typed readers over one JSON object; `source` names the file in errors. */
function fields(json: Json, source: string) {
  const malformed = (key: string, expected: string, value: unknown): never => {
    throw new FormatError({ fn: FN, expected: `${source}: "${key}" ${expected}`, got: JSON.stringify(value) ?? String(value) });
  };
  const num = (key: string): number | undefined => {
    const v = json[key];
    if (v === undefined || v === null) return undefined;
    return typeof v === 'number' && Number.isFinite(v) ? v : malformed(key, 'to be a number', v);
  };
  const int = (key: string, fallback?: number): number => {
    const v = num(key) ?? fallback;
    if (v === undefined) throw new FormatError({ fn: FN, expected: `${source}: "${key}" (a positive integer)`, got: 'no such key' });
    return Number.isInteger(v) && v > 0 ? v : malformed(key, 'to be a positive integer', v);
  };
  const bool = (key: string, fallback: boolean): boolean => {
    const v = json[key];
    if (v === undefined || v === null) return fallback;
    return typeof v === 'boolean' ? v : malformed(key, 'to be true or false', v);
  };
  const str = (key: string): string | undefined => {
    const v = json[key];
    if (v === undefined || v === null) return undefined;
    return typeof v === 'string' ? v : malformed(key, 'to be a string', v);
  };
  const obj = (key: string): Json | undefined => {
    const v = json[key];
    if (v === undefined || v === null) return undefined;
    return isObject(v) ? v : malformed(key, 'to be an object', v);
  };
  return { num, int, bool, str, obj };
}

const MODEL_TYPES: readonly ModelType[] = ['llama', 'deepseek_v3', 'deepseek_v32', 'attnkit_nsa'];

function isModelType(value: string): value is ModelType {
  return MODEL_TYPES.some((t) => t === value);
}

/** Parses and validates a `config.json` (already JSON-decoded). */
export function parseModelConfig(json: unknown, source = 'config.json'): ModelConfig {
  if (!isObject(json)) throw new FormatError({ fn: FN, expected: `${source}: a JSON object`, got: json === null ? 'null' : Array.isArray(json) ? 'an array' : typeof json });
  const f = fields(json, source);
  const type = f.str('model_type');
  if (type === undefined || !isModelType(type)) {
    throw new ConfigError({ fn: FN, expected: `${source}: model_type one of ${MODEL_TYPES.join(', ')}`, got: JSON.stringify(type) ?? 'none' });
  }
  const act = f.str('hidden_act') ?? 'silu';
  if (act !== 'silu') throw new ConfigError({ fn: FN, expected: `${source}: hidden_act "silu" (SwiGLU MLP)`, got: JSON.stringify(act) });
  refuseMoE(json, f, type, source);

  const rope = ropeSettings(f, source);
  const vocabSize = f.int('vocab_size');
  const dim = f.int('hidden_size');
  const nHeads = f.int('num_attention_heads');
  const common = {
    modelType: type,
    vocabSize,
    dim,
    intermediateSize: f.int('intermediate_size'),
    nLayers: f.int('num_hidden_layers'),
    nHeads,
    normEps: f.num('rms_norm_eps') ?? CONFIG_DEFAULTS.normEps,
    ropeTheta: rope.theta,
    maxPositions: f.int('max_position_embeddings', CONFIG_DEFAULTS.maxPositions),
    tieWordEmbeddings: f.bool('tie_word_embeddings', CONFIG_DEFAULTS.tieWordEmbeddings),
    attentionBias: f.bool('attention_bias', CONFIG_DEFAULTS.attentionBias),
    nsaPositionEncodings: { key: false, value: false },
    nsaMlpHidden: null,
  };
  if (!(common.normEps > 0)) throw new ConfigError({ fn: FN, expected: `${source}: rms_norm_eps > 0`, got: String(common.normEps) });

  if (type === 'deepseek_v3' || type === 'deepseek_v32') {
    if (f.bool('rope_interleave', true) === false) {
      throw new ConfigError({ fn: FN, expected: `${source}: rope_interleave true (MLA's interleaved RoPE, spec §2)`, got: 'false' });
    }
    if (common.attentionBias) throw new ConfigError({ fn: FN, expected: `${source}: attention_bias false for MLA`, got: 'true' });
    // attention-mla reads the MLA fields, RoPE θ and YaRN (transformers 4 or 5 form) itself.
    const dsa = type === 'deepseek_v32' ? dsaConfigFromHuggingFace(json) : null;
    const mla = dsa ?? mlaConfigFromHuggingFace(json);
    return { ...common, attention: dsa ? 'dsa' : 'mla', nKvHeads: 1, headDim: mla.qkHeadDim, maxPositions: mla.maxSeqLen, mla, dsa, nsa: null };
  }

  if (rope.yarn) throw new ConfigError({ fn: FN, expected: `${source}: default RoPE for ${type}`, got: 'YaRN scaling' });
  const nKvHeads = f.int('num_key_value_heads', nHeads);
  if (nHeads % nKvHeads !== 0) throw new ConfigError({ fn: FN, expected: `${source}: num_key_value_heads dividing num_attention_heads (${nHeads})`, got: String(nKvHeads) });
  if (f.num('head_dim') === undefined && dim % nHeads !== 0) {
    throw new ConfigError({ fn: FN, expected: `${source}: hidden_size divisible by num_attention_heads, or a head_dim`, got: `${dim} / ${nHeads}` });
  }
  const headDim = f.int('head_dim', dim / nHeads);
  const attention: AttentionKind = nKvHeads === nHeads ? 'mha' : nKvHeads === 1 ? 'mqa' : 'gqa';
  if (type === 'llama') return { ...common, attention, nKvHeads, headDim, mla: null, dsa: null, nsa: null };

  const nsaJson = f.obj('nsa');
  if (!nsaJson) throw new ConfigError({ fn: FN, expected: `${source}: an "nsa" object for model_type attnkit_nsa`, got: 'none' });
  const n = fields(nsaJson, `${source} nsa`);
  const phi = n.str('phi') ?? 'mean';
  if (phi !== 'mean' && phi !== 'mlp') throw new ConfigError({ fn: FN, expected: `${source}: nsa.phi "mean" or "mlp"`, got: JSON.stringify(phi) });
  const nsa = resolveNSAConfig(
    {
      nHeads,
      nKvHeads,
      headDim,
      gateDim: dim,
      cmpBlock: n.int('block_length'),
      cmpStride: n.int('block_stride'),
      slcBlock: n.int('select_block'),
      nSelected: n.int('num_selected'),
      nInit: n.num('init_blocks') ?? 1,
      nLocal: n.num('local_blocks') ?? 1,
      window: n.int('window'),
      phi,
    },
    FN,
  );
  const nsaMlpHidden = phi === 'mlp' ? n.int('mlp_hidden') : null;
  const nsaPositionEncodings = { key: n.bool('pe_k', false), value: n.bool('pe_v', false) };
  return { ...common, attention: 'nsa', nKvHeads, headDim, mla: null, dsa: null, nsa, nsaMlpHidden, nsaPositionEncodings };
}

/**
 * RoPE: θ from `rope_parameters.rope_theta` (transformers 5) or `rope_theta` (4); YaRN from
 * `rope_parameters` with rope_type "yarn" or from `rope_scaling`. Other scalings are refused.
 */
function ropeSettings(f: ReturnType<typeof fields>, source: string): { theta: number; yarn: Json | null } {
  const params = f.obj('rope_parameters');
  const scaling = f.obj('rope_scaling');
  const theta = (params && typeof params.rope_theta === 'number' ? params.rope_theta : undefined) ?? f.num('rope_theta') ?? CONFIG_DEFAULTS.ropeTheta;
  let yarn: Json | null = null;
  for (const candidate of [params, scaling]) {
    if (!candidate) continue;
    const kind = candidate.rope_type ?? candidate.type ?? 'default';
    if (kind === 'yarn') yarn = candidate;
    else if (kind !== 'default') throw new ConfigError({ fn: FN, expected: `${source}: RoPE type "default" or "yarn"`, got: JSON.stringify(kind) });
  }
  return { theta, yarn };
}

/** MoE is out of scope: every layer's MLP must be dense. */
function refuseMoE(json: Json, f: ReturnType<typeof fields>, type: ModelType, source: string): void {
  const layers = f.int('num_hidden_layers');
  const types = json.mlp_layer_types;
  if (Array.isArray(types)) {
    const moe = types.flatMap((t, i) => (t === 'dense' ? [] : [i]));
    if (moe.length > 0) {
      throw new ConfigError({ fn: FN, expected: `${source}: only dense MLP layers (mixture-of-experts layers are not supported)`, got: `mlp_layer_types with non-dense layers ${moe.join(', ')}` });
    }
    return;
  }
  if (type !== 'deepseek_v3' && type !== 'deepseek_v32') {
    if ((f.num('num_local_experts') ?? 0) > 0) throw new ConfigError({ fn: FN, expected: `${source}: no mixture-of-experts layers`, got: `num_local_experts ${f.num('num_local_experts')}` });
    return;
  }
  const experts = f.num('n_routed_experts');
  if (experts === 0) return; // no routed experts at all: every layer is dense
  const firstK = f.num('first_k_dense_replace') ?? CONFIG_DEFAULTS.firstKDenseReplace;
  if (firstK < layers) {
    throw new ConfigError({
      fn: FN,
      expected: `${source}: every layer dense, first_k_dense_replace ≥ num_hidden_layers (${layers}); mixture-of-experts layers are not supported`,
      got: `first_k_dense_replace ${firstK} (layers ${firstK}..${layers - 1} are MoE)`,
    });
  }
}
