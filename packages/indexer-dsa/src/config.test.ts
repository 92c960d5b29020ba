// Configs, presets, checkpoint configs and the cache the layer sizes from them.
import { kvBytesPerToken } from '@attnkit/kvcache';
import { CpuBackend } from '@attnkit/tensor-core';
import { describe, expect, it } from 'vitest';
import { DSACache } from './cache.js';
import { dsaConfigFromDeepSeek, dsaConfigFromHuggingFace } from './checkpoint-config.js';
import { DEEPSEEK_V32_DSA, INDEXER_DEFAULTS, dsaCacheElementsPerToken, resolveDSAConfig, resolveIndexerConfig } from './config.js';
import { expectThrows } from './testing/fixtures/expect-error.js';
import { SMALL } from './testing/fixtures/layers.js';

describe('resolveDSAConfig', () => {
  it("defaults to DeepSeek-V3.2-Exp: V3's MLA, a 64 × 128 indexer keeping 2048 tokens", () => {
    const c = resolveDSAConfig();
    expect(c).toMatchObject({ dim: 7168, nHeads: 128, qLoraRank: 1536, kvLoraRank: 512, indexNHeads: 64, indexHeadDim: 128, indexTopk: 2048, indexPrecision: 'exact' });
    expect(c.softmaxScale).toBeCloseTo(0.13523, 5); // MLA's, with YaRN's mscale²
    expect(c.indexer.headWeightScale).toBeCloseTo((64 * 128) ** -0.5, 12);
    expect(c.indexer.quantBlockSize).toBe(128);
    expect(c.indexer.yarnActive).toBe(c.yarnActive);
    expect(resolveDSAConfig(DEEPSEEK_V32_DSA)).toEqual(c);
    expect(resolveIndexerConfig()).toMatchObject(INDEXER_DEFAULTS);
  });

  it('shares the rope settings with MLA and treats an explicit undefined as the default', () => {
    const c = resolveDSAConfig({ ...SMALL, indexTopk: undefined, yarn: { originalSeqLen: 16, factor: undefined } });
    expect(c.indexTopk).toBe(2048);
    expect(c.yarn.factor).toBe(40);
    expect(c.indexer).toMatchObject({ qkRopeHeadDim: c.qkRopeHeadDim, ropeTheta: c.ropeTheta, maxSeqLen: c.maxSeqLen, yarn: c.yarn, yarnActive: true });
    expect(resolveDSAConfig({ ...SMALL, indexHeadDim: 8 }).indexer.quantBlockSize).toBe(8);
  });

  it('counts 576 + 128 = 704 cached values per token for V3.2 (spec §5)', () => {
    expect(dsaCacheElementsPerToken(DEEPSEEK_V32_DSA)).toEqual({ latent: 576, indexKey: 128, total: 704 });
  });
});

describe('checkpoint configs', () => {
  const deepseek = {
    vocab_size: 129280,
    dim: 7168,
    n_heads: 128,
    q_lora_rank: 1536,
    kv_lora_rank: 512,
    qk_nope_head_dim: 128,
    qk_rope_head_dim: 64,
    v_head_dim: 128,
    original_seq_len: 4096,
    rope_theta: 10000,
    rope_factor: 40,
    beta_fast: 32,
    beta_slow: 1,
    mscale: 1,
    index_n_heads: 64,
    index_head_dim: 128,
    index_topk: 2048,
  };

  it("reads DeepSeek's config_671B_v3.2.json fields", () => {
    expect(dsaConfigFromDeepSeek(deepseek)).toEqual(resolveDSAConfig(DEEPSEEK_V32_DSA));
    expect(dsaConfigFromDeepSeek({ ...deepseek, index_topk: 512 }, { indexPrecision: 'fp8' })).toMatchObject({ indexTopk: 512, indexPrecision: 'fp8' });
    expectThrows(() => dsaConfigFromDeepSeek({ ...deepseek, index_topk: '2048' }), 'FormatError', 'index_topk');
    expectThrows(() => dsaConfigFromDeepSeek({ ...deepseek, q_lora_rank: 0 }), 'ConfigError', 'qLoraRank');
  });

  it("reads a Hugging Face DeepseekV32 config.json", () => {
    const c = dsaConfigFromHuggingFace({
      hidden_size: 7168,
      num_attention_heads: 128,
      q_lora_rank: 1536,
      kv_lora_rank: 512,
      qk_nope_head_dim: 128,
      qk_rope_head_dim: 64,
      v_head_dim: 128,
      max_position_embeddings: 163840,
      rms_norm_eps: 1e-6,
      rope_theta: 10000,
      rope_scaling: { type: 'yarn', factor: 40, original_max_position_embeddings: 4096, beta_fast: 32, beta_slow: 1, mscale: 1, mscale_all_dim: 1 },
      index_n_heads: 64,
      index_head_dim: 128,
      index_topk: 2048,
    });
    expect(c).toMatchObject({ indexNHeads: 64, indexHeadDim: 128, indexTopk: 2048, maxSeqLen: 163840, yarnActive: true });
    expect(c.softmaxScale).toBeCloseTo(0.13523, 5);
  });
});

describe('DSACache', () => {
  it('holds both caches in step and accounts for their bytes as kvcache does', async () => {
    const backend = new CpuBackend();
    const config = resolveDSAConfig(SMALL);
    const cache = new DSACache(backend, config, { batchSize: 2, initialCapacity: 8 });
    expect(cache.latent.rowWidth).toBe(config.kvLoraRank + config.qkRopeHeadDim);
    expect(cache.indexKeys.keyDim).toBe(config.indexHeadDim);
    const perToken = kvBytesPerToken({ variant: 'dsa', kvLoraRank: config.kvLoraRank, ropeDim: config.qkRopeHeadDim, indexDim: config.indexHeadDim, dtype: 'f32' });
    expect(cache.nbytes).toBe(2 * cache.latent.allocatedTokens * perToken);
    const fp8 = new DSACache(backend, { ...SMALL, indexPrecision: 'fp8' }, { batchSize: 1 });
    expect(fp8.indexKeys.dtype).toBe('fp8e4m3');
    expectThrows(() => new DSACache(backend, { ...SMALL, indexPrecision: 'fp8' }, { batchSize: 1, indexDtype: 'bf16' }), 'ConfigError', 'fp8e4m3');
    cache.dispose();
    fp8.dispose();
    expect(backend.memory().liveTensors).toBe(0);
    await backend.dispose();
  });
});
