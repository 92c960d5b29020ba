// NSA hyperparameters (spec §4): a typed config with the paper's defaults, validated once.
//
// Paper symbol → field: l → cmpBlock, d → cmpStride, l′ → slcBlock, n → nSelected,
// w → window. The field names follow the golden manifests (cmp_block, cmp_stride, …).

import { ConfigError } from '@attnkit/tensor-core';

/** How a block of `cmpBlock` keys (or values) becomes one compressed key (value). */
export type CompressionKind = 'mean' | 'mlp';

/** What a user writes: head geometry is required, every NSA hyperparameter has a default. */
export interface NSAConfig {
  /** Query heads Hq. */
  readonly nHeads: number;
  /** Key/value heads Hkv; Hq must be a multiple (GQA group G = Hq / Hkv). */
  readonly nKvHeads: number;
  /** Query/key head dim D. */
  readonly headDim: number;
  /** Value head dim Dv. Default: headDim. */
  readonly vHeadDim?: number;
  /** Width of the gate input x (the layer's hidden size). */
  readonly gateDim: number;
  /** Compression block length l. Default 32 (paper). */
  readonly cmpBlock?: number;
  /** Compression stride d; must divide cmpBlock and slcBlock. Default 16 (paper). */
  readonly cmpStride?: number;
  /** Selection block length l′. Default 64 (paper). */
  readonly slcBlock?: number;
  /** Selected blocks n per query and kv head, forced ones included. Default 16 (paper). */
  readonly nSelected?: number;
  /** Forced initial blocks: selection blocks 0..nInit−1. Default 1 (paper). */
  readonly nInit?: number;
  /** Forced local blocks: the query's own (possibly partial) block and the nLocal−1 before it. Default 2 (paper). */
  readonly nLocal?: number;
  /** Sliding window w: keys p−w+1..p, the query's own included. Default 512 (paper). */
  readonly window?: number;
  /** Compression φ: `mean` (optionally with intra-block position encodings) or a 2-layer `mlp`. Default `mean`. */
  readonly phi?: CompressionKind;
  /** Softmax scale of all three branches. Default 1/√D. */
  readonly scale?: number;
}

/** Every field present and checked. */
export interface ResolvedNSAConfig {
  readonly nHeads: number;
  readonly nKvHeads: number;
  /** Query heads per kv head, Hq / Hkv. */
  readonly groupSize: number;
  readonly headDim: number;
  readonly vHeadDim: number;
  readonly gateDim: number;
  readonly cmpBlock: number;
  readonly cmpStride: number;
  readonly slcBlock: number;
  readonly nSelected: number;
  readonly nInit: number;
  readonly nLocal: number;
  readonly window: number;
  readonly phi: CompressionKind;
  readonly scale: number;
}

/** The paper's NSA hyperparameters (§4.1: l 32, d 16, l′ 64, n 16 incl. 1 initial + 2 local, w 512). */
export const NSA_PAPER_DEFAULTS = {
  cmpBlock: 32,
  cmpStride: 16,
  slcBlock: 64,
  nSelected: 16,
  nInit: 1,
  nLocal: 2,
  window: 512,
  phi: 'mean',
} as const satisfies Partial<NSAConfig>;

/** Fills in the defaults and checks every rule; throws ConfigError naming the offending field. */
export function resolveNSAConfig(config: NSAConfig, fn = 'resolveNSAConfig'): ResolvedNSAConfig {
  const positive = (name: string, value: number): number => {
    if (!Number.isInteger(value) || value < 1) throw new ConfigError({ fn, expected: `${name} to be a positive integer`, got: String(value) });
    return value;
  };
  const nonNegative = (name: string, value: number): number => {
    if (!Number.isInteger(value) || value < 0) throw new ConfigError({ fn, expected: `${name} to be a non-negative integer`, got: String(value) });
    return value;
  };

  const nHeads = positive('nHeads', config.nHeads);
  const nKvHeads = positive('nKvHeads', config.nKvHeads);
  if (nHeads % nKvHeads !== 0) {
    throw new ConfigError({ fn, expected: `nHeads (${nHeads}) to be a multiple of nKvHeads`, got: `nKvHeads ${nKvHeads}` });
  }
  const headDim = positive('headDim', config.headDim);
  const vHeadDim = positive('vHeadDim', config.vHeadDim ?? headDim);
  const gateDim = positive('gateDim', config.gateDim);

  const cmpBlock = positive('cmpBlock (l)', config.cmpBlock ?? NSA_PAPER_DEFAULTS.cmpBlock);
  const cmpStride = positive('cmpStride (d)', config.cmpStride ?? NSA_PAPER_DEFAULTS.cmpStride);
  const slcBlock = positive('slcBlock (l′)', config.slcBlock ?? NSA_PAPER_DEFAULTS.slcBlock);
  // Block importance counts shared stride segments, so both block lengths are whole segments.
  if (cmpBlock % cmpStride !== 0) {
    throw new ConfigError({ fn, expected: `cmpBlock (l) to be a multiple of cmpStride (d = ${cmpStride})`, got: `l = ${cmpBlock}` });
  }
  if (slcBlock % cmpStride !== 0) {
    throw new ConfigError({ fn, expected: `slcBlock (l′) to be a multiple of cmpStride (d = ${cmpStride})`, got: `l′ = ${slcBlock}` });
  }

  const nSelected = positive('nSelected (n)', config.nSelected ?? NSA_PAPER_DEFAULTS.nSelected);
  const nInit = nonNegative('nInit', config.nInit ?? NSA_PAPER_DEFAULTS.nInit);
  const nLocal = nonNegative('nLocal', config.nLocal ?? NSA_PAPER_DEFAULTS.nLocal);
  if (nInit + nLocal > nSelected) {
    throw new ConfigError({ fn, expected: `forced blocks nInit + nLocal ≤ nSelected (${nSelected})`, got: `${nInit} + ${nLocal} = ${nInit + nLocal}` });
  }
  const window = positive('window (w)', config.window ?? NSA_PAPER_DEFAULTS.window);

  const phi = config.phi ?? NSA_PAPER_DEFAULTS.phi;
  if (phi !== 'mean' && phi !== 'mlp') throw new ConfigError({ fn, expected: "phi 'mean' or 'mlp'", got: String(phi) });

  const scale = config.scale ?? 1 / Math.sqrt(headDim);
  if (!Number.isFinite(scale) || scale <= 0) throw new ConfigError({ fn, expected: 'a positive finite softmax scale', got: String(scale) });

  return {
    nHeads,
    nKvHeads,
    groupSize: nHeads / nKvHeads,
    headDim,
    vHeadDim,
    gateDim,
    cmpBlock,
    cmpStride,
    slcBlock,
    nSelected,
    nInit,
    nLocal,
    window,
    phi,
    scale,
  };
}

type BlockGeometry = Pick<ResolvedNSAConfig, 'cmpBlock' | 'cmpStride' | 'slcBlock'>;

/** Complete compression blocks among T tokens: ⌊(T − l)/d⌋ + 1, or 0 when T < l. */
export function compressedBlockCount(tokens: number, geometry: Pick<BlockGeometry, 'cmpBlock' | 'cmpStride'>): number {
  return tokens < geometry.cmpBlock ? 0 : Math.floor((tokens - geometry.cmpBlock) / geometry.cmpStride) + 1;
}

/** Compressed blocks visible to the query at position p: those complete by p (i·d + l − 1 ≤ p). */
export function visibleCompressedBlocks(position: number, geometry: Pick<BlockGeometry, 'cmpBlock' | 'cmpStride'>): number {
  return compressedBlockCount(position + 1, geometry);
}

/** Selection blocks among T tokens, the last one possibly partial: ⌈T / l′⌉. */
export function selectionBlockCount(tokens: number, geometry: Pick<BlockGeometry, 'slcBlock'>): number {
  return Math.ceil(tokens / geometry.slcBlock);
}

/**
 * Keys one decode step reads per kv head at context T (the query at p = T − 1): the visible
 * compressed blocks, the selected blocks and the window — N_cmp + n·l′ + w at long context —
 * against T for dense attention. Overlaps between the branches are counted twice, as the
 * kernels read them twice.
 */
export function keysReadPerStep(tokens: number, config: ResolvedNSAConfig): { compressed: number; selected: number; window: number; total: number; dense: number } {
  const p = tokens - 1;
  const compressed = visibleCompressedBlocks(p, config);
  const candidates = Math.floor(p / config.slcBlock) + 1;
  const blocks = Math.min(config.nSelected, candidates);
  // Every selected block is whole except the query's own, which is cut at p; it is always among
  // the candidates but not always selected, so count whole blocks and cap at the tokens there are.
  const selected = Math.min(blocks * config.slcBlock, tokens);
  const window = Math.min(config.window, tokens);
  return { compressed, selected, window, total: compressed + selected + window, dense: tokens };
}
