// The reference model's config.json rows of the bad-input catalogue (apps/docs/guide/errors.md):
// a config that is missing, not JSON, ill-typed, of an architecture the model does not run
// (another model_type, MoE, another activation or RoPE scaling), or whose head counts do not
// fit together — and a checkpoint whose weights contradict its config. Each is refused before
// anything is allocated; the scene's well-formed file parses afterwards.

import type { CatalogueRow, CatalogueScene } from '@attnkit/testkit';
import { serializeSafetensors } from '../io/safetensors.js';
import { readCheckpoint } from './checkpoint.js';
import { parseModelConfig } from './config.js';

/** A small, valid llama (GQA) config; each row breaks one thing in it. */
export const LLAMA_CONFIG = {
  model_type: 'llama',
  vocab_size: 32,
  hidden_size: 16,
  intermediate_size: 32,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  num_key_value_heads: 2,
} as const;

const llama = (changes: Readonly<Record<string, unknown>>): Record<string, unknown> => ({ ...LLAMA_CONFIG, ...changes });
const without = (key: string): Record<string, unknown> => Object.fromEntries(Object.entries(LLAMA_CONFIG).filter(([k]) => k !== key));
const deepseek = (changes: Readonly<Record<string, unknown>>): Record<string, unknown> => ({ ...LLAMA_CONFIG, model_type: 'deepseek_v3', ...changes });
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A checkpoint of LLAMA_CONFIG whose one weight file holds only the embedding. */
function weightsMissing(): unknown {
  const embedding = { dtype: 'F32' as const, shape: [32, 16], data: new Float32Array(32 * 16) };
  const files = new Map([
    ['config.json', bytes(JSON.stringify(LLAMA_CONFIG))],
    ['model.safetensors', serializeSafetensors({ 'model.embed_tokens.weight': embedding }, {})],
  ]);
  return readCheckpoint(files);
}

/** The same with an embedding of the wrong width (hidden_size 16 in the config, 12 in the file). */
function weightsMisshapen(): unknown {
  const embedding = { dtype: 'F32' as const, shape: [32, 12], data: new Float32Array(32 * 12) };
  const files = new Map([
    ['config.json', bytes(JSON.stringify(LLAMA_CONFIG))],
    ['model.safetensors', serializeSafetensors({ 'model.embed_tokens.weight': embedding }, {})],
  ]);
  return readCheckpoint(files);
}

export function configRows<S extends CatalogueScene>(): CatalogueRow<S>[] {
  return [
    { kind: 'file', input: 'a checkpoint without config.json', call: 'readCheckpoint(files)', error: 'FormatError', message: /\[readCheckpoint\] expected a file config\.json \(the model configuration\), got only model\.safetensors/, run: () => readCheckpoint(new Map([['model.safetensors', new Uint8Array(8)]])) },
    { kind: 'file', input: 'config.json that is not JSON', call: 'readCheckpoint(files)', error: 'FormatError', message: /\[readCheckpoint\] expected config\.json: valid UTF-8 JSON, got /, run: () => readCheckpoint(new Map([['config.json', bytes('{"model_type": llama}')]])) },
    { kind: 'file', input: 'config.json holding an array', call: 'parseModelConfig(json)', error: 'FormatError', message: /\[parseModelConfig\] expected config\.json: a JSON object, got an array/, run: () => parseModelConfig([LLAMA_CONFIG]) },
    { kind: 'file', input: 'a missing required field (hidden_size)', call: 'parseModelConfig(json)', error: 'FormatError', message: /expected config\.json: "hidden_size" \(a positive integer\), got no such key/, run: () => parseModelConfig(without('hidden_size')) },
    { kind: 'file', input: 'a number given as a string', call: 'parseModelConfig(json)', error: 'FormatError', message: /expected config\.json: "num_hidden_layers" to be a number, got "2"/, run: () => parseModelConfig(llama({ num_hidden_layers: '2' })) },
    { kind: 'file', input: 'a fractional size', call: 'parseModelConfig(json)', error: 'FormatError', message: /expected config\.json: "intermediate_size" to be a positive integer, got 31\.5/, run: () => parseModelConfig(llama({ intermediate_size: 31.5 })) },
    { kind: 'file', input: 'a flag that is not a boolean', call: 'parseModelConfig(json)', error: 'FormatError', message: /expected config\.json: "tie_word_embeddings" to be true or false, got "yes"/, run: () => parseModelConfig(llama({ tie_word_embeddings: 'yes' })) },
    { kind: 'file', input: 'rope_scaling that is not an object', call: 'parseModelConfig(json)', error: 'FormatError', message: /expected config\.json: "rope_scaling" to be an object, got "yarn"/, run: () => parseModelConfig(llama({ rope_scaling: 'yarn' })) },
    { kind: 'config', input: 'no model_type', call: 'parseModelConfig(json)', error: 'ConfigError', message: /expected config\.json: model_type one of llama, deepseek_v3, deepseek_v32, attnkit_nsa, got none/, run: () => parseModelConfig(without('model_type')) },
    { kind: 'config', input: 'an unsupported architecture (model_type "mixtral")', call: 'parseModelConfig(json)', error: 'ConfigError', message: /model_type one of llama, deepseek_v3, deepseek_v32, attnkit_nsa, got "mixtral"/, run: () => parseModelConfig(llama({ model_type: 'mixtral' })) },
    { kind: 'config', input: 'an activation other than SiLU', call: 'parseModelConfig(json)', error: 'ConfigError', message: /expected config\.json: hidden_act "silu" \(SwiGLU MLP\), got "gelu"/, run: () => parseModelConfig(llama({ hidden_act: 'gelu' })) },
    { kind: 'config', input: 'a llama config with routed experts (MoE)', call: 'parseModelConfig(json)', error: 'ConfigError', message: /expected config\.json: no mixture-of-experts layers, got num_local_experts 8/, run: () => parseModelConfig(llama({ num_local_experts: 8 })) },
    { kind: 'config', input: 'a DeepSeek config whose later layers are MoE', call: 'parseModelConfig(json)', error: 'ConfigError', message: /every layer dense, first_k_dense_replace ≥ num_hidden_layers \(2\); mixture-of-experts layers are not supported, got first_k_dense_replace 1 \(layers 1\.\.1 are MoE\)/, run: () => parseModelConfig(deepseek({ n_routed_experts: 64, first_k_dense_replace: 1 })) },
    { kind: 'config', input: 'mlp_layer_types naming a sparse layer', call: 'parseModelConfig(json)', error: 'ConfigError', message: /only dense MLP layers \(mixture-of-experts layers are not supported\), got mlp_layer_types with non-dense layers 1/, run: () => parseModelConfig(llama({ mlp_layer_types: ['dense', 'sparse'] })) },
    { kind: 'head count', input: 'num_key_value_heads not dividing num_attention_heads', call: 'parseModelConfig(json)', error: 'ConfigError', message: /expected config\.json: num_key_value_heads dividing num_attention_heads \(4\), got 3/, run: () => parseModelConfig(llama({ num_key_value_heads: 3 })) },
    { kind: 'head count', input: 'more kv heads than query heads', call: 'parseModelConfig(json)', error: 'ConfigError', message: /num_key_value_heads dividing num_attention_heads \(4\), got 8/, run: () => parseModelConfig(llama({ num_key_value_heads: 8 })) },
    { kind: 'head count', input: 'hidden_size not divisible by the heads (and no head_dim)', call: 'parseModelConfig(json)', error: 'ConfigError', message: /expected config\.json: hidden_size divisible by num_attention_heads, or a head_dim, got 18 \/ 4/, run: () => parseModelConfig(llama({ hidden_size: 18 })) },
    { kind: 'head count', input: 'zero attention heads', call: 'parseModelConfig(json)', error: 'FormatError', message: /expected config\.json: "num_attention_heads" to be a positive integer, got 0/, run: () => parseModelConfig(llama({ num_attention_heads: 0 })) },
    { kind: 'config', input: 'RoPE scaling other than default or YaRN', call: 'parseModelConfig(json)', error: 'ConfigError', message: /expected config\.json: RoPE type "default" or "yarn", got "linear"/, run: () => parseModelConfig(llama({ rope_scaling: { rope_type: 'linear', factor: 2 } })) },
    { kind: 'config', input: 'YaRN on a llama config', call: 'parseModelConfig(json)', error: 'ConfigError', message: /expected config\.json: default RoPE for llama, got YaRN scaling/, run: () => parseModelConfig(llama({ rope_scaling: { rope_type: 'yarn', factor: 4 } })) },
    { kind: 'config', input: 'rms_norm_eps 0', call: 'parseModelConfig(json)', error: 'ConfigError', message: /expected config\.json: rms_norm_eps > 0, got 0/, run: () => parseModelConfig(llama({ rms_norm_eps: 0 })) },
    { kind: 'config', input: 'DeepSeek MLA with rope_interleave false', call: 'parseModelConfig(json)', error: 'ConfigError', message: /expected config\.json: rope_interleave true \(MLA's interleaved RoPE, spec §2\), got false/, run: () => parseModelConfig(deepseek({ rope_interleave: false })) },
    { kind: 'config', input: 'attnkit_nsa without its "nsa" object', call: 'parseModelConfig(json)', error: 'ConfigError', message: /expected config\.json: an "nsa" object for model_type attnkit_nsa, got none/, run: () => parseModelConfig(llama({ model_type: 'attnkit_nsa' })) },
    { kind: 'config', input: 'an NSA compressor that does not exist', call: 'parseModelConfig(json)', error: 'ConfigError', message: /expected config\.json: nsa\.phi "mean" or "mlp", got "max"/, run: () => parseModelConfig(llama({ model_type: 'attnkit_nsa', nsa: { phi: 'max' } })) },
    { kind: 'file', input: 'weights missing for the config', call: 'readCheckpoint(files)', error: 'FormatError', message: /\[readCheckpoint\] expected tensor ".*" \[.*\] \(llama, gqa\), got no such tensor in the checkpoint/, run: () => weightsMissing() },
    { kind: 'file', input: 'a weight whose shape contradicts the config', call: 'readCheckpoint(files)', error: 'FormatError', message: /\[readCheckpoint\] expected tensor "model\.embed_tokens\.weight" of shape \[32, 16\] \(from config\.json\), got \[32, 12\]/, run: () => weightsMisshapen() },
  ];
}
