// Loading checkpoints from memory: sharded and single-file, F32/F16/BF16, and every way a
// checkpoint can be wrong (malformed, truncated, mismatched, MoE) as a named error.

import { ConfigError, CpuBackend, FormatError, encodeBf16, encodeF16 } from '@attnkit/tensor-core';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type SafetensorsInput, entryValues, parseSafetensors, serializeSafetensors } from '../io/safetensors.js';
import { readCheckpointFolder } from '../node.js';
import { maxAbsError, readExpectedLogits } from '../testing/expected.js';
import { type CheckpointFiles, readCheckpoint } from './checkpoint.js';
import { parseModelConfig } from './config.js';
import { Model } from './model.js';

const LLAMA = join(import.meta.dirname, '../../fixtures/hf/llama-gqa');
const DSA = join(import.meta.dirname, '../../fixtures/hf/deepseek-v32-dsa');
const V3 = join(import.meta.dirname, '../../fixtures/hf/deepseek-v3-qlora-yarn');

type Tensors = Record<string, SafetensorsInput>;

async function tensorsOf(dir: string): Promise<Tensors> {
  const file = parseSafetensors(new Uint8Array(await readFile(join(dir, 'model.safetensors'))));
  const out: Tensors = {};
  for (const [name, entry] of file.tensors) {
    const v = entryValues(entry);
    out[name] = v.dtype === 'f32' ? { dtype: 'F32', shape: entry.shape, data: v.data } : { dtype: v.dtype === 'f16' ? 'F16' : 'BF16', shape: entry.shape, data: v.data };
  }
  return out;
}

async function configOf(dir: string): Promise<Record<string, unknown>> {
  const json: unknown = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8'));
  if (typeof json !== 'object' || json === null) throw new Error('bad fixture');
  return { ...json };
}

function filesOf(config: unknown, tensors: Tensors): Map<string, Uint8Array> {
  return new Map([
    ['config.json', new TextEncoder().encode(JSON.stringify(config))],
    ['model.safetensors', serializeSafetensors(tensors)],
  ]);
}

async function logitsOf(files: CheckpointFiles, ids: readonly number[]): Promise<Float32Array> {
  const backend = new CpuBackend();
  try {
    using model = await Model.load(backend, files);
    using cache = model.createCache();
    using logits = await model.forward([ids], cache);
    return await logits.data();
  } finally {
    await backend.dispose();
  }
}

function expectError(fn: () => unknown, kind: new (...args: never[]) => Error, pattern: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(kind);
  expect(caught instanceof Error ? caught.message : '').toMatch(pattern);
}

describe('checkpoint files', () => {
  it('loads a sharded checkpoint (model.safetensors.index.json) to the same logits', async () => {
    const { inputIds, logits, tolerance } = await readExpectedLogits(LLAMA);
    const tensors = await tensorsOf(LLAMA);
    const names = Object.keys(tensors).sort();
    const half = Math.floor(names.length / 2);
    const shards = [names.slice(0, half), names.slice(half)];
    const files = new Map<string, Uint8Array>([['config.json', new TextEncoder().encode(JSON.stringify(await configOf(LLAMA)))]]);
    const weightMap: Record<string, string> = {};
    shards.forEach((list, i) => {
      const file = `model-0000${i + 1}-of-00002.safetensors`;
      files.set(file, serializeSafetensors(Object.fromEntries(list.map((n) => [n, tensors[n] as SafetensorsInput]))));
      for (const n of list) weightMap[n] = file;
    });
    files.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ metadata: {}, weight_map: weightMap })));
    expect(maxAbsError(await logitsOf(files, inputIds), logits).error).toBeLessThanOrEqual(tolerance);

    const missingShard = new Map(files);
    missingShard.delete('model-00002-of-00002.safetensors');
    expectError(() => readCheckpoint(missingShard), FormatError, /model-00002-of-00002\.safetensors/);
    const wrongShard = new Map(files);
    const other = weightMap['model.norm.weight'] === 'model-00001-of-00002.safetensors' ? 'model-00002-of-00002.safetensors' : 'model-00001-of-00002.safetensors';
    const moved = { ...weightMap, 'model.norm.weight': other };
    wrongShard.set('model.safetensors.index.json', new TextEncoder().encode(JSON.stringify({ weight_map: moved })));
    expectError(() => readCheckpoint(wrongShard), FormatError, /"model\.norm\.weight" in model-0000.-of-00002\.safetensors/);
  });

  it('reads F16 and BF16 weights as their exact values (same logits as the rounded weights in F32)', async () => {
    const { inputIds } = await readExpectedLogits(LLAMA);
    const tensors = await tensorsOf(LLAMA);
    const config = await configOf(LLAMA);
    for (const [dtype, encode, decode] of [
      ['F16', encodeF16, (bits: Uint16Array) => new Float32Array(bits.length).map((_, i) => f16(bits[i] ?? 0))],
      ['BF16', encodeBf16, (bits: Uint16Array) => new Float32Array(new Uint32Array(Array.from(bits, (b) => b << 16)).buffer)],
    ] as const) {
      const narrow: Tensors = {};
      const rounded: Tensors = {};
      for (const [name, t] of Object.entries(tensors)) {
        const bits = encode(t.data);
        narrow[name] = { dtype, shape: t.shape, data: bits };
        rounded[name] = { dtype: 'F32', shape: t.shape, data: decode(bits) };
      }
      const a = await logitsOf(filesOf(config, narrow), inputIds);
      const b = await logitsOf(filesOf(config, rounded), inputIds);
      expect(maxAbsError(a, b).error, dtype).toBe(0);
    }
  });

  it('names what is missing, misshapen, mistyped, truncated or malformed', async () => {
    const tensors = await tensorsOf(LLAMA);
    const config = await configOf(LLAMA);
    const { 'model.layers.1.mlp.up_proj.weight': _dropped, ...missing } = tensors;
    expectError(() => readCheckpoint(filesOf(config, missing)), FormatError, /tensor "model\.layers\.1\.mlp\.up_proj\.weight" \[64, 32\].*no such tensor/);

    const wrong = { ...tensors, 'model.norm.weight': { dtype: 'F32', shape: [31], data: new Float32Array(31) } } satisfies Tensors;
    expectError(() => readCheckpoint(filesOf(config, wrong)), FormatError, /"model\.norm\.weight" of shape \[32\].*got \[31\]/);

    const extra = { ...tensors, 'model.layers.0.self_attn.q_norm.weight': { dtype: 'F32', shape: [8], data: new Float32Array(8) } } satisfies Tensors;
    expectError(() => readCheckpoint(filesOf(config, extra)), FormatError, /1 unexpected: "model\.layers\.0\.self_attn\.q_norm\.weight"/);

    // An I8 tensor: rewrite one header entry's dtype so the byte count still matches.
    const oneByte = { ...tensors, 'model.norm.weight': { dtype: 'F16', shape: [16], data: new Uint16Array(16) } } satisfies Tensors;
    const bytes = serializeSafetensors(oneByte);
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    const header = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
    const edited = header.replace('"model.norm.weight":{"dtype":"F16","shape":[16]', '"model.norm.weight":{"dtype":"I8","shape":[32]');
    expect(edited).not.toBe(header);
    const patched = new Uint8Array(bytes);
    patched.set(new TextEncoder().encode(edited.padEnd(headerLength, ' ')), 8);
    const i8 = new Map([['config.json', new TextEncoder().encode(JSON.stringify(config))], ['model.safetensors', patched]]);
    expectError(() => readCheckpoint(i8), FormatError, /"model\.norm\.weight" stored as F32, F16 or BF16.*got I8/);

    const whole = serializeSafetensors(tensors);
    const truncated = new Map([['config.json', new TextEncoder().encode(JSON.stringify(config))], ['model.safetensors', whole.subarray(0, whole.length - 100)]]);
    expectError(() => readCheckpoint(truncated), FormatError, /truncated/);

    expectError(() => readCheckpoint(new Map([['config.json', new TextEncoder().encode('{"model_type": "llama",')], ['model.safetensors', whole]])), FormatError, /config\.json: valid UTF-8 JSON/);
    expectError(() => readCheckpoint(new Map([['model.safetensors', whole]])), FormatError, /a file config\.json/);
    expectError(() => readCheckpoint(new Map([['config.json', new TextEncoder().encode(JSON.stringify(config))]])), FormatError, /a file model\.safetensors/);
    expectError(() => readCheckpoint(filesOf({ ...config, hidden_size: '32' }, tensors)), FormatError, /"hidden_size" to be a number/);
    expectError(() => readCheckpoint(filesOf({ ...config, hidden_size: 48 }, tensors)), FormatError, /of shape \[256, 48\]/);
  });

  it('reads a Node folder without the expected_logits files', async () => {
    const files = await readCheckpointFolder(DSA);
    expect([...files.keys()].sort()).toEqual(['config.json', 'model.safetensors']);
    await expect(readCheckpointFolder(join(DSA, 'nope'))).rejects.toThrow(FormatError);
  });
});

describe('config.json', () => {
  it('refuses mixture-of-experts layers, naming them', async () => {
    const v3 = await configOf(V3);
    expectError(() => parseModelConfig({ ...v3, first_k_dense_replace: 1 }), ConfigError, /first_k_dense_replace ≥ num_hidden_layers \(2\).*got first_k_dense_replace 1 \(layers 1\.\.1 are MoE\)/);
    // absent: transformers' default 3, so a 4-layer model has one MoE layer
    expectError(() => parseModelConfig({ ...v3, first_k_dense_replace: undefined, num_hidden_layers: 4 }), ConfigError, /got first_k_dense_replace 3 \(layers 3\.\.3 are MoE\)/);
    const v32 = await configOf(DSA);
    expectError(() => parseModelConfig({ ...v32, mlp_layer_types: ['dense', 'sparse'] }), ConfigError, /non-dense layers 1/);
    expect(parseModelConfig({ ...v3, n_routed_experts: 0, first_k_dense_replace: 0 }).attention).toBe('mla');
  });

  it('resolves each model type to its attention variant', async () => {
    expect(parseModelConfig(await configOf(LLAMA)).attention).toBe('gqa');
    const llama = await configOf(LLAMA);
    expect(parseModelConfig({ ...llama, num_key_value_heads: 4 }).attention).toBe('mha');
    expect(parseModelConfig({ ...llama, num_key_value_heads: 1 }).attention).toBe('mqa');
    const v3 = parseModelConfig(await configOf(V3));
    expect(v3.attention).toBe('mla');
    expect(v3.mla?.yarnActive).toBe(true);
    expect(v3.mla?.softmaxScale).toBeCloseTo((1 / Math.sqrt(24)) * (0.1 * 0.707 * Math.log(40) + 1) ** 2, 6);
    expect(parseModelConfig(await configOf(DSA)).attention).toBe('dsa');
  });

  it('refuses what the model cannot run', async () => {
    const llama = await configOf(LLAMA);
    expectError(() => parseModelConfig({ ...llama, model_type: 'mixtral' }), ConfigError, /model_type one of llama, deepseek_v3, deepseek_v32, attnkit_nsa/);
    expectError(() => parseModelConfig({ ...llama, hidden_act: 'gelu' }), ConfigError, /hidden_act "silu"/);
    expectError(() => parseModelConfig({ ...llama, num_key_value_heads: 3 }), ConfigError, /num_key_value_heads dividing/);
    expectError(() => parseModelConfig({ ...llama, rope_parameters: { rope_type: 'llama3', rope_theta: 10000 } }), ConfigError, /RoPE type "default" or "yarn"/);
    const v3 = await configOf(V3);
    expectError(() => parseModelConfig({ ...v3, rope_interleave: false }), ConfigError, /rope_interleave true/);
    expectError(() => parseModelConfig([]), FormatError, /a JSON object/);
  });
});

/** IEEE half → float (test-side, independent of tensor-core's decoder). */
function f16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}
