// Configs, checkpoint configs, weight records and the order cost rule.
import { CpuBackend, type Tensor, tensor } from '@attnkit/tensor-core';
import { describe, expect, it } from 'vitest';
import { mlaConfigFromDeepSeek, mlaConfigFromHuggingFace } from './checkpoint-config.js';
import { DEEPSEEK_V2_LITE_MLA, DEEPSEEK_V3_MLA, MLA_DEFAULTS, type MLAConfigInput, mlaCacheElementsPerToken, resolveMLAConfig } from './config.js';
import { chooseOrder, orderCosts } from './cost.js';
import { MLA } from './mla.js';
import { expectRejects, expectThrows } from './testing/fixtures/expect-error.js';
import { randomMLAWeights, uploadMLAWeights } from './testing/fixtures/reference-mla.js';
import { mlaWeightsFromRecord } from './weights.js';

const SMALL: MLAConfigInput = { dim: 8, nHeads: 2, qLoraRank: 4, kvLoraRank: 6, qkNopeHeadDim: 4, qkRopeHeadDim: 2, vHeadDim: 3, maxSeqLen: 32 };

describe('resolveMLAConfig', () => {
  it("takes DeepSeek's ModelArgs defaults and derives the softmax scale", () => {
    const c = resolveMLAConfig();
    expect(c).toMatchObject(MLA_DEFAULTS);
    expect(c.yarnActive).toBe(true); // max_seq_len 16384 > original_seq_len 4096, as in the reference
    expect(c.qkHeadDim).toBe(192);
    expect(c.latentRowDim).toBe(576);
  });

  it('gives the V3 scale of spec §2 and the 576 vs 40 960 cache', () => {
    const v3 = resolveMLAConfig(DEEPSEEK_V3_MLA);
    expect(v3.softmaxScale).toBeCloseTo(0.13523, 5); // 192^−1/2 · (0.1·ln 40 + 1)²
    expect(mlaCacheElementsPerToken(DEEPSEEK_V3_MLA)).toEqual({ latent: 576, expanded: 40960 });
    const lite = resolveMLAConfig(DEEPSEEK_V2_LITE_MLA);
    expect(lite.softmaxScale).toBeCloseTo(192 ** -0.5 * (0.1 * 0.707 * Math.log(40) + 1) ** 2, 12);
  });

  it('turns YaRN on iff maxSeqLen > yarn.originalSeqLen', () => {
    expect(resolveMLAConfig({ maxSeqLen: 4096 }).yarnActive).toBe(false);
    expect(resolveMLAConfig({ maxSeqLen: 4096 }).softmaxScale).toBe(192 ** -0.5);
    expect(resolveMLAConfig({ maxSeqLen: 4097 }).yarnActive).toBe(true);
    expect(resolveMLAConfig({ maxSeqLen: 64, yarn: { originalSeqLen: 32 } }).yarnActive).toBe(true);
  });

  it.each([
    [{ qkRopeHeadDim: 63 }, 'even qkRopeHeadDim'],
    [{ qLoraRank: -1 }, 'qLoraRank'],
    [{ qLoraRank: 1.5 }, 'qLoraRank'],
    [{ nHeads: 0 }, 'nHeads'],
    [{ kvLoraRank: 2.5 }, 'kvLoraRank'],
    [{ vHeadDim: Number.NaN }, 'vHeadDim'],
    [{ ropeTheta: 1 }, 'ropeTheta'],
    [{ normEps: 0 }, 'normEps'],
    [{ yarn: { factor: 0.5 } }, 'yarn.factor'],
    [{ yarn: { betaFast: 1, betaSlow: 32 } }, 'betaFast > yarn.betaSlow'],
    [{ maxSeqLen: 0 }, 'maxSeqLen'],
  ] satisfies [MLAConfigInput, string][])('refuses %j', (input, words) => {
    expectThrows(() => resolveMLAConfig(input), 'ConfigError', words);
  });
});

describe('checkpoint configs', () => {
  it("reads DeepSeek's config_671B.json fields", () => {
    const c = mlaConfigFromDeepSeek({
      vocab_size: 129280,
      dim: 7168,
      n_heads: 128,
      q_lora_rank: 1536,
      kv_lora_rank: 512,
      qk_nope_head_dim: 128,
      qk_rope_head_dim: 64,
      v_head_dim: 128,
      rope_factor: 40,
      original_seq_len: 4096,
      mscale: 1.0,
    });
    expect(c).toEqual(resolveMLAConfig(DEEPSEEK_V3_MLA));
  });

  it("reads a Hugging Face DeepSeek-V3 config.json (mscale_all_dim is DeepSeek's mscale)", () => {
    const hf = {
      hidden_size: 7168,
      num_attention_heads: 128,
      q_lora_rank: 1536,
      kv_lora_rank: 512,
      qk_nope_head_dim: 128,
      qk_rope_head_dim: 64,
      v_head_dim: 128,
      rope_theta: 10000,
      rms_norm_eps: 1e-6,
      max_position_embeddings: 163840,
      rope_scaling: { type: 'yarn', factor: 40, original_max_position_embeddings: 4096, beta_fast: 32, beta_slow: 1, mscale: 1.0, mscale_all_dim: 1.0 },
    };
    const c = mlaConfigFromHuggingFace(hf);
    expect(c.softmaxScale).toBe(resolveMLAConfig(DEEPSEEK_V3_MLA).softmaxScale);
    expect(c.maxSeqLen).toBe(163840);
    expect(mlaConfigFromHuggingFace({ ...hf, q_lora_rank: null, rope_scaling: { ...hf.rope_scaling, mscale: 0.707, mscale_all_dim: 0.707 } }).qLoraRank).toBe(0);
    expectThrows(() => mlaConfigFromHuggingFace({ ...hf, rope_scaling: { ...hf.rope_scaling, mscale_all_dim: 0.707 } }), 'ConfigError');
    expectThrows(() => mlaConfigFromHuggingFace({ ...hf, max_position_embeddings: 4096 }), 'ConfigError');
    expectThrows(() => mlaConfigFromHuggingFace({ ...hf, hidden_size: '7168' }), 'FormatError');
    expect(mlaConfigFromHuggingFace({ ...hf, rope_scaling: null }).yarnActive).toBe(false);
  });

  it("reads transformers 5's rope_parameters (RoPE θ and YaRN in one object)", () => {
    const { rope_scaling: scaling, rope_theta: _theta, ...base } = {
      hidden_size: 32,
      num_attention_heads: 4,
      q_lora_rank: 16,
      kv_lora_rank: 16,
      qk_nope_head_dim: 8,
      qk_rope_head_dim: 16,
      v_head_dim: 8,
      rope_theta: 10000,
      max_position_embeddings: 163840,
      rope_scaling: { type: 'yarn', factor: 40, original_max_position_embeddings: 4096, beta_fast: 32, beta_slow: 1, mscale: 0.707, mscale_all_dim: 0.707 },
    };
    const v4 = mlaConfigFromHuggingFace({ ...base, rope_theta: 10000, rope_scaling: scaling });
    const { type: _type, ...yarnFields } = scaling;
    const v5 = mlaConfigFromHuggingFace({ ...base, rope_parameters: { ...yarnFields, rope_type: 'yarn', rope_theta: 10000 } });
    expect(v5).toEqual(v4);
    expect(v5.yarnActive).toBe(true);
    const plain = mlaConfigFromHuggingFace({ ...base, max_position_embeddings: 4096, rope_parameters: { rope_type: 'default', rope_theta: 50000 } });
    expect([plain.yarnActive, plain.ropeTheta]).toEqual([false, 50000]);
    expectThrows(() => mlaConfigFromHuggingFace({ ...base, rope_parameters: { rope_type: 'linear', factor: 2, rope_theta: 10000 } }), 'ConfigError');
  });
});

describe('weights', () => {
  const backend = new CpuBackend();
  const config = resolveMLAConfig(SMALL);
  const record = (names: 'deepseek' | 'huggingface' = 'deepseek', c = config): Record<string, Tensor> => uploadMLAWeights(backend, c, randomMLAWeights(c, 1), names);

  it('finds either naming, with or without ".weight", under a prefix', () => {
    const ds = mlaWeightsFromRecord(record(), config);
    expect(ds.query.kind).toBe('lora');
    const prefixed: Record<string, Tensor> = { 'model.layers.0.mlp.up_proj.weight': tensor(backend, [1], [1]) };
    for (const [k, t] of Object.entries(record('huggingface'))) prefixed[`model.layers.0.self_attn.${k}`] = t;
    expect(mlaWeightsFromRecord(prefixed, config, { prefix: 'model.layers.0.self_attn.' }).wkvB.shape).toEqual([2 * (4 + 3), 6]);
    const direct = resolveMLAConfig({ ...SMALL, qLoraRank: 0 });
    expect(mlaWeightsFromRecord(record('huggingface', direct), direct).query.kind).toBe('direct');
  });

  it('names a missing, duplicated, unknown or misplaced weight', () => {
    const { wkv_b: _dropped, ...missing } = record();
    expectThrows(() => mlaWeightsFromRecord(missing, config), 'ConfigError', '"wkv_b"');
    const both = { ...record(), 'kv_b_proj.weight': tensor(backend, new Float32Array(14 * 6), [14, 6]) };
    expectThrows(() => mlaWeightsFromRecord(both, config), 'ConfigError', 'both');
    const typo = { ...record(), 'wkv_b.weights': tensor(backend, [1], [1]) };
    expectThrows(() => mlaWeightsFromRecord(typo, config), 'ConfigError', 'wkv_b.weights');
    const direct = resolveMLAConfig({ ...SMALL, qLoraRank: 0 });
    expectThrows(() => mlaWeightsFromRecord(record('deepseek'), direct), 'ConfigError', 'qLoraRank is 0');
    expectThrows(() => mlaWeightsFromRecord(record('deepseek', direct), config), 'ConfigError', 'qLoraRank is 4');
  });

  it('refuses weights whose shapes disagree with the config, naming the config fields', async () => {
    // Weights made for dv = 4, config says 3: wkv_b and wo disagree.
    const other = resolveMLAConfig({ ...SMALL, vHeadDim: 4 });
    await expectRejects(MLA.fromRecord(backend, config, record('deepseek', other)), 'ShapeError', '[nHeads·(qkNopeHeadDim+vHeadDim), kvLoraRank] = [14, 6], got [16, 6]');
    const wrongRope = resolveMLAConfig({ ...SMALL, qkRopeHeadDim: 4 });
    await expectRejects(MLA.fromRecord(backend, config, record('deepseek', wrongRope)), 'ShapeError', 'qkRopeHeadDim');
    const ints = { ...record(), kv_norm: tensor(backend, new Int32Array(6), [6], { dtype: 'i32' }) };
    await expectRejects(MLA.fromRecord(backend, config, ints), 'DTypeError');
    const elsewhere = { ...record(), wo: tensor(new CpuBackend(), new Float32Array(8 * 6), [8, 6]) };
    await expectRejects(MLA.fromRecord(backend, config, elsewhere), 'BackendError');
  });
});

describe('order cost rule', () => {
  const v3 = resolveMLAConfig(DEEPSEEK_V3_MLA);

  it('counts the multiply–adds of spec §2 for DeepSeek-V3', () => {
    const decode = orderCosts(v3, { queries: 1, keys: 1000 });
    expect(decode.naive.macs).toBe(1000 * 512 * 128 * 256 + 1000 * 128 * 320);
    expect(decode.absorbed.macs).toBe(128 * 128 * 512 + 1000 * 128 * 1088 + 128 * 512 * 128);
    expect(decode.naive.elements).toBe(1000 * 128 * 320);
    const prefill = orderCosts(v3, { queries: 4, keys: 4 });
    expect(prefill.absorbed.macs - 4 * 128 * 128 * 512 - 4 * 128 * 512 * 128).toBe(10 * 128 * 1088); // 10 causal pairs
    expect(orderCosts(v3, { queries: 4, keys: 100, keysPerQuery: 2 }).naive.macs).toBe(100 * 512 * 128 * 256 + 8 * 128 * 320);
  });

  it('takes absorbed for decode, naive for a long prefill, absorbed for a short chunk after a long cache', () => {
    expect(chooseOrder(v3, { queries: 1, keys: 1 })).toBe('absorbed');
    expect(chooseOrder(v3, { queries: 1, keys: 65536 })).toBe('absorbed');
    expect(chooseOrder(v3, { queries: 4096, keys: 4096 })).toBe('naive');
    expect(chooseOrder(v3, { queries: 2, keys: 2 })).toBe('naive');
    expect(chooseOrder(v3, { queries: 8, keys: 16384 })).toBe('absorbed');
    expect(chooseOrder(v3, { queries: 2048, keys: 16384 })).toBe('naive');
  });
});
