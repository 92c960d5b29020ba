// Published attention configurations of real models, with where each number comes from. The
// calculator and the concepts page's KV-cache table are both built from this list.

import type { CacheLayout, Variant } from './layouts.js';

export interface Source {
  readonly label: string;
  readonly url: string;
}

/** The sizes the KV cache depends on, named as in the spec (and, in brackets, the configs). */
export interface AttentionConfig {
  /** Attention layers (`n_layers`, `num_hidden_layers`). */
  readonly layers: number;
  /** Query heads H (`n_heads`, `num_attention_heads`). */
  readonly heads: number;
  /** Key/value heads Hkv (`num_key_value_heads`; = H for MHA, 1 for MQA). Unused by MLA. */
  readonly kvHeads: number;
  /** Query/key head dim D; for MLA models dn + dr (`qk_nope_head_dim + qk_rope_head_dim`). */
  readonly keyDim: number;
  /** Value head dim Dv (`v_head_dim`). */
  readonly valueDim: number;
  /** MLA latent width C (`kv_lora_rank`); 0 without MLA. */
  readonly kvLoraRank: number;
  /** MLA decoupled rope key width dr (`qk_rope_head_dim`); 0 without MLA. */
  readonly ropeDim: number;
  /** DSA indexer key width D_I (`index_head_dim`); 0 without DSA. */
  readonly indexHeadDim: number;
  /** Sliding-window attention: the cache never holds more than this many tokens (Mistral's rolling buffer). */
  readonly slidingWindow?: number;
}

export interface CacheRow {
  readonly label: string;
  readonly layout: CacheLayout;
  /** The model's own attention (the other rows are what-ifs with its sizes). */
  readonly published: boolean;
  /** Layers to multiply by; null when only a per-layer figure makes sense for this model. */
  readonly layers: number | null;
  readonly note?: string;
}

export interface ModelPreset {
  readonly id: string;
  readonly name: string;
  readonly attention: Variant;
  readonly config: AttentionConfig;
  readonly sources: readonly Source[];
  /** Comparison rows; default `standardRows(attention, config)`. */
  readonly rows?: readonly CacheRow[];
}

const DEEPSEEK_V3_CONFIG: Source = {
  label: 'deepseek-ai/DeepSeek-V3 inference/configs/config_671B.json (9b4e978)',
  url: 'https://github.com/deepseek-ai/DeepSeek-V3/blob/9b4e978/inference/configs/config_671B.json',
};
const SPEC_5: Source = { label: 'attnkit spec §5 (KV-cache memory per token per layer)', url: '/concepts/kv-cache#spec-table' };
const LLAMA3_PAPER: Source = { label: 'The Llama 3 Herd of Models, arXiv:2407.21783, Table 3', url: 'https://arxiv.org/abs/2407.21783' };
const NSA_PAPER: Source = { label: 'Native Sparse Attention, arXiv:2502.11089, §4.1', url: 'https://arxiv.org/abs/2502.11089' };

/**
 * DeepSeek-V3 compared as in spec §5, row for row: MHA with V3's head dims, MHA with 128-wide
 * heads, GQA with 8 kv heads × 128, MQA, MLA, DSA (and its deployed fp8 form), NSA's paper model.
 */
const DEEPSEEK_V3_ROWS: readonly CacheRow[] = [
  { label: "MHA with V3's head dims (K 192, V 128 per head = MLA “naive” cache)", layout: { variant: 'MHA', kvHeads: 128, keyDim: 192, valueDim: 128 }, published: false, layers: 61 },
  { label: 'MHA, 128 heads × 128 (K and V)', layout: { variant: 'MHA', kvHeads: 128, keyDim: 128, valueDim: 128 }, published: false, layers: 61 },
  { label: 'GQA, 8 kv heads × 128', layout: { variant: 'GQA', kvHeads: 8, keyDim: 128, valueDim: 128 }, published: false, layers: 61 },
  { label: 'MQA, 1 kv head, K 192 / V 128', layout: { variant: 'MQA', kvHeads: 1, keyDim: 192, valueDim: 128 }, published: false, layers: 61 },
  { label: 'MLA (latent c + shared k_pe)', layout: { variant: 'MLA', latentDim: 512, ropeDim: 64 }, published: true, layers: 61 },
  { label: 'DSA (MLA + indexer key 128)', layout: { variant: 'DSA', latentDim: 512, ropeDim: 64, indexDim: 128 }, published: false, layers: 61 },
  {
    label: 'DSA, deployed fp8 (V3.2 inference: fp8 latent and indexer key, bf16 rope key)',
    layout: { variant: 'DSA', latentDim: 512, ropeDim: 64, indexDim: 128, deployedFp8: true },
    published: false,
    layers: 61,
  },
  {
    label: 'NSA (paper model: 4 kv heads, K 192, V 128, d = 16)',
    layout: { variant: 'NSA', kvHeads: 4, keyDim: 192, valueDim: 128, blockLength: 32, stride: 16 },
    published: false,
    layers: null,
    note: 'per layer only: the NSA paper model has 30 layers, not 61',
  },
];

export const MODEL_PRESETS: readonly ModelPreset[] = [
  {
    id: 'deepseek-v3',
    name: 'DeepSeek-V3 (671B)',
    attention: 'MLA',
    config: { layers: 61, heads: 128, kvHeads: 128, keyDim: 192, valueDim: 128, kvLoraRank: 512, ropeDim: 64, indexHeadDim: 0 },
    sources: [DEEPSEEK_V3_CONFIG, SPEC_5],
    rows: DEEPSEEK_V3_ROWS,
  },
  {
    id: 'deepseek-v3.2-exp',
    name: 'DeepSeek-V3.2-Exp (671B)',
    attention: 'DSA',
    config: { layers: 61, heads: 128, kvHeads: 128, keyDim: 192, valueDim: 128, kvLoraRank: 512, ropeDim: 64, indexHeadDim: 128 },
    sources: [
      {
        label: 'deepseek-ai/DeepSeek-V3.2-Exp inference/config_671B_v3.2.json (3b99a53): index_head_dim 128, index_n_heads 64, index_topk 2048',
        url: 'https://github.com/deepseek-ai/DeepSeek-V3.2-Exp/blob/3b99a53/inference/config_671B_v3.2.json',
      },
    ],
  },
  {
    id: 'deepseek-v2',
    name: 'DeepSeek-V2 (236B)',
    attention: 'MLA',
    config: { layers: 60, heads: 128, kvHeads: 128, keyDim: 192, valueDim: 128, kvLoraRank: 512, ropeDim: 64, indexHeadDim: 0 },
    sources: [
      { label: 'deepseek-ai/DeepSeek-V3 inference/configs/config_236B.json (9b4e978)', url: 'https://github.com/deepseek-ai/DeepSeek-V3/blob/9b4e978/inference/configs/config_236B.json' },
      { label: 'DeepSeek-V2, arXiv:2405.04434, §3.1', url: 'https://arxiv.org/abs/2405.04434' },
    ],
  },
  {
    id: 'deepseek-v2-lite',
    name: 'DeepSeek-V2-Lite (16B)',
    attention: 'MLA',
    config: { layers: 27, heads: 16, kvHeads: 16, keyDim: 192, valueDim: 128, kvLoraRank: 512, ropeDim: 64, indexHeadDim: 0 },
    sources: [
      { label: 'deepseek-ai/DeepSeek-V3 inference/configs/config_16B.json (9b4e978): q_lora_rank 0', url: 'https://github.com/deepseek-ai/DeepSeek-V3/blob/9b4e978/inference/configs/config_16B.json' },
      { label: 'deepseek-ai/DeepSeek-V2-Lite config.json', url: 'https://huggingface.co/deepseek-ai/DeepSeek-V2-Lite/blob/main/config.json' },
    ],
  },
  {
    id: 'llama-3.1-405b',
    name: 'Llama-3.1-405B',
    attention: 'GQA',
    config: { layers: 126, heads: 128, kvHeads: 8, keyDim: 128, valueDim: 128, kvLoraRank: 0, ropeDim: 0, indexHeadDim: 0 },
    sources: [LLAMA3_PAPER, { label: 'meta-llama/Llama-3.1-405B config.json', url: 'https://huggingface.co/meta-llama/Llama-3.1-405B/blob/main/config.json' }],
  },
  {
    id: 'llama-3-70b',
    name: 'Llama-3-70B',
    attention: 'GQA',
    config: { layers: 80, heads: 64, kvHeads: 8, keyDim: 128, valueDim: 128, kvLoraRank: 0, ropeDim: 0, indexHeadDim: 0 },
    sources: [LLAMA3_PAPER, { label: 'meta-llama/Meta-Llama-3-70B config.json', url: 'https://huggingface.co/meta-llama/Meta-Llama-3-70B/blob/main/config.json' }],
  },
  {
    id: 'llama-3-8b',
    name: 'Llama-3-8B',
    attention: 'GQA',
    config: { layers: 32, heads: 32, kvHeads: 8, keyDim: 128, valueDim: 128, kvLoraRank: 0, ropeDim: 0, indexHeadDim: 0 },
    sources: [LLAMA3_PAPER, { label: 'meta-llama/Meta-Llama-3-8B config.json', url: 'https://huggingface.co/meta-llama/Meta-Llama-3-8B/blob/main/config.json' }],
  },
  {
    id: 'qwen2.5-72b',
    name: 'Qwen2.5-72B',
    attention: 'GQA',
    config: { layers: 80, heads: 64, kvHeads: 8, keyDim: 128, valueDim: 128, kvLoraRank: 0, ropeDim: 0, indexHeadDim: 0 },
    sources: [
      { label: 'Qwen2.5 Technical Report, arXiv:2412.15115, Table 1', url: 'https://arxiv.org/abs/2412.15115' },
      { label: 'Qwen/Qwen2.5-72B config.json (hidden_size 8192)', url: 'https://huggingface.co/Qwen/Qwen2.5-72B/blob/main/config.json' },
    ],
  },
  {
    id: 'qwen2.5-7b',
    name: 'Qwen2.5-7B',
    attention: 'GQA',
    config: { layers: 28, heads: 28, kvHeads: 4, keyDim: 128, valueDim: 128, kvLoraRank: 0, ropeDim: 0, indexHeadDim: 0 },
    sources: [
      { label: 'Qwen2.5 Technical Report, arXiv:2412.15115, Table 1', url: 'https://arxiv.org/abs/2412.15115' },
      { label: 'Qwen/Qwen2.5-7B config.json (hidden_size 3584)', url: 'https://huggingface.co/Qwen/Qwen2.5-7B/blob/main/config.json' },
    ],
  },
  {
    id: 'mistral-7b',
    name: 'Mistral-7B (v0.1)',
    attention: 'GQA',
    config: { layers: 32, heads: 32, kvHeads: 8, keyDim: 128, valueDim: 128, kvLoraRank: 0, ropeDim: 0, indexHeadDim: 0, slidingWindow: 4096 },
    sources: [
      { label: 'Mistral 7B, arXiv:2310.06825, Table 1 (window 4096, rolling buffer cache)', url: 'https://arxiv.org/abs/2310.06825' },
      { label: 'mistralai/Mistral-7B-v0.1 config.json', url: 'https://huggingface.co/mistralai/Mistral-7B-v0.1/blob/main/config.json' },
    ],
  },
  {
    id: 'llama-2-7b',
    name: 'Llama-2-7B',
    attention: 'MHA',
    config: { layers: 32, heads: 32, kvHeads: 32, keyDim: 128, valueDim: 128, kvLoraRank: 0, ropeDim: 0, indexHeadDim: 0 },
    sources: [
      { label: 'Llama 2, arXiv:2307.09288, Table 1 (GQA only for 34B/70B)', url: 'https://arxiv.org/abs/2307.09288' },
      { label: 'meta-llama/Llama-2-7b-hf config.json', url: 'https://huggingface.co/meta-llama/Llama-2-7b-hf/blob/main/config.json' },
    ],
  },
  {
    id: 'falcon-7b',
    name: 'Falcon-7B',
    attention: 'MQA',
    config: { layers: 32, heads: 71, kvHeads: 1, keyDim: 64, valueDim: 64, kvLoraRank: 0, ropeDim: 0, indexHeadDim: 0 },
    sources: [{ label: 'tiiuae/falcon-7b config.json (hidden_size 4544 = 71 × 64, multi_query true)', url: 'https://huggingface.co/tiiuae/falcon-7b/blob/main/config.json' }],
  },
  {
    id: 'nsa-paper',
    name: 'NSA paper model (27B)',
    attention: 'NSA',
    config: { layers: 30, heads: 64, kvHeads: 4, keyDim: 192, valueDim: 128, kvLoraRank: 0, ropeDim: 0, indexHeadDim: 0 },
    sources: [NSA_PAPER, SPEC_5],
  },
];

/** NSA's compression stride d in the paper (§4.1) and in the rows below. */
export const NSA_STRIDE = 16;
/** NSA's compression block length l in the paper (§4.1). */
export const NSA_BLOCK = 32;

/**
 * The rows the calculator shows for a config: the published attention first, then what the same
 * model would cache with the other variants (MLA and DSA only where it has their sizes).
 */
export function standardRows(attention: Variant, c: AttentionConfig): CacheRow[] {
  const kv = (variant: 'MHA' | 'GQA' | 'MQA', kvHeads: number): CacheLayout => ({ variant, kvHeads, keyDim: c.keyDim, valueDim: c.valueDim });
  const rows: CacheRow[] = [];
  const add = (label: string, layout: CacheLayout, note?: string): void => {
    rows.push({ label, layout, published: layout.variant === attention, layers: c.layers, ...(note ? { note } : {}) });
  };
  const dims = `K ${c.keyDim}, V ${c.valueDim}`;
  add(`MHA, ${c.heads} heads (${dims})`, kv('MHA', c.heads));
  if (c.kvHeads > 1 && c.kvHeads < c.heads) add(`GQA, ${c.kvHeads} kv heads (${dims})`, kv('GQA', c.kvHeads));
  add(`MQA, 1 kv head (${dims})`, kv('MQA', 1));
  if (c.kvLoraRank > 0) {
    add(`MLA (latent ${c.kvLoraRank} + rope key ${c.ropeDim})`, { variant: 'MLA', latentDim: c.kvLoraRank, ropeDim: c.ropeDim });
    if (c.indexHeadDim > 0) {
      add(`DSA (MLA + indexer key ${c.indexHeadDim})`, { variant: 'DSA', latentDim: c.kvLoraRank, ropeDim: c.ropeDim, indexDim: c.indexHeadDim });
      rows.push({
        label: 'DSA, deployed fp8 (fp8 latent and indexer key, bf16 rope key)',
        layout: { variant: 'DSA', latentDim: c.kvLoraRank, ropeDim: c.ropeDim, indexDim: c.indexHeadDim, deployedFp8: true },
        published: false,
        layers: c.layers,
      });
    }
  }
  if (c.kvLoraRank === 0) {
    const nsaHeads = Math.max(1, Math.min(c.kvHeads, c.heads));
    add(`NSA, ${nsaHeads} kv heads (${dims}), d = ${NSA_STRIDE}`, { variant: 'NSA', kvHeads: nsaHeads, keyDim: c.keyDim, valueDim: c.valueDim, blockLength: NSA_BLOCK, stride: NSA_STRIDE });
  }
  // The published variant first, the rest in the order of the concepts path.
  return [...rows.filter((r) => r.published), ...rows.filter((r) => !r.published)];
}

export function presetRows(preset: ModelPreset): readonly CacheRow[] {
  return preset.rows ?? standardRows(preset.attention, preset.config);
}
