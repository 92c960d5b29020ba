// Kernel contracts: the name, typed inputs and typed attributes of every primitive a backend
// implements. Ops (src/ops) validate and then call `backend.kernels[name](inputs, attrs)`;
// backends implement exactly this table, so neither side needs a cast.
//
// Shape letters used in the comments: B batch, S new tokens (queries), T keys, H heads,
// D head dim, N / K / M generic sizes.

import type { DType } from './dtype.js';
import type { Tensor } from './tensor.js';

export type UnaryOp =
  | 'silu'
  | 'relu'
  | 'sigmoid'
  | 'gelu' // exact, with erf
  | 'gelu_tanh'
  | 'exp'
  | 'neg'
  | 'abs'
  | 'sqrt'
  | 'rsqrt'
  | 'square'
  | 'tanh';

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'max' | 'min';

export type ReduceOp = 'sum' | 'mean' | 'max' | 'min';

export type RopeLayout = 'interleaved' | 'halfsplit';

export interface KernelContracts {
  /** a [..., M, K] · b [..., K, N] → [..., M, N]; batch dims broadcast; transposes swap the last two axes. */
  MatMul: {
    inputs: { readonly a: Tensor; readonly b: Tensor };
    attrs: { readonly transposeA: boolean; readonly transposeB: boolean };
    output: Tensor;
  };
  /** x [..., I] · weightᵀ [O, I] (+ bias [O]) → [..., O]. The weight may be f16/bf16/int8/fp8 storage. */
  Linear: {
    inputs: { readonly x: Tensor; readonly weight: Tensor; readonly bias: Tensor | null };
    attrs: Record<string, never>;
    output: Tensor;
  };
  Unary: {
    inputs: { readonly x: Tensor };
    attrs: { readonly op: UnaryOp };
    output: Tensor;
  };
  /** Elementwise with NumPy broadcasting. */
  Binary: {
    inputs: { readonly a: Tensor; readonly b: Tensor };
    attrs: { readonly op: BinaryOp };
    output: Tensor;
  };
  /** x·scale + shift, elementwise. */
  Affine: {
    inputs: { readonly x: Tensor };
    attrs: { readonly scale: number; readonly shift: number };
    output: Tensor;
  };
  /**
   * softmax(scale·x + mask) over the last axis. `mask` is additive (0 or −∞) and broadcasts to x.
   * An entry whose mask is −∞ is hidden: probability exactly 0 whatever x holds (NaN, ±∞). Among
   * the visible entries NaN propagates (a NaN or +∞ makes the row NaN). A row with no visible
   * entry, or whose visible entries are all −∞, gives all zeros (an empty attention set outputs 0).
   */
  Softmax: {
    inputs: { readonly x: Tensor; readonly mask: Tensor | null };
    attrs: { readonly scale: number };
    output: Tensor;
  };
  /** ln Σ exp(scale·x + mask) over the last axis → x.shape without its last axis (−∞ for an empty row; hidden entries and NaN as in Softmax). */
  LogSumExp: {
    inputs: { readonly x: Tensor; readonly mask: Tensor | null };
    attrs: { readonly scale: number };
    output: Tensor;
  };
  /** x / sqrt(mean(x²) + eps) ⊙ weight, over the last axis. */
  RMSNorm: {
    inputs: { readonly x: Tensor; readonly weight: Tensor | null };
    attrs: { readonly eps: number };
    output: Tensor;
  };
  /** (x − μ) / sqrt(σ² + eps) ⊙ weight + bias over the last axis (biased variance). */
  LayerNorm: {
    inputs: { readonly x: Tensor; readonly weight: Tensor | null; readonly bias: Tensor | null };
    attrs: { readonly eps: number };
    output: Tensor;
  };
  /**
   * Rotary embedding of the channel slice [offset, offset + width) of x [B, S, H, D] (or
   * [S, H, D]); other channels pass through. positions: i32 [S] or [B, S]; invFreq: f32 [width/2].
   * Pair i turns by positions·invFreq[i]: (2i, 2i+1) when interleaved, (i, i + width/2) when halfsplit.
   */
  RoPE: {
    inputs: { readonly x: Tensor; readonly positions: Tensor; readonly invFreq: Tensor };
    attrs: { readonly layout: RopeLayout; readonly offset: number; readonly width: number };
    output: Tensor;
  };
  /**
   * Gathers along `axis` (tf.gather semantics with batchDims): x [b..., N, r...] and indices
   * i32 [b..., k...] → [b..., k..., r...], where b... are the first `batchDims` axes and
   * axis = batchDims. Rows of quantised x are dequantised in the gather; the output is f32.
   */
  Gather: {
    inputs: { readonly x: Tensor; readonly indices: Tensor };
    attrs: { readonly batchDims: number };
    output: Tensor;
  };
  /**
   * In place: writes src into dst along `axis` starting at `start` (dst[..., start:start+n, ...] = src).
   * src is converted to dst's storage dtype (quantised per block). Returns dst.
   */
  WriteSlice: {
    inputs: { readonly dst: Tensor; readonly src: Tensor };
    attrs: { readonly axis: number; readonly start: number };
    output: Tensor;
  };
  /**
   * In place: dst [N, r...] rows `indices` (i32 [k]) ← src [k, r...]. Returns dst. Used by paged
   * caches to write new tokens into their pages.
   */
  ScatterRows: {
    inputs: { readonly dst: Tensor; readonly src: Tensor; readonly indices: Tensor };
    attrs: Record<string, never>;
    output: Tensor;
  };
  /** The k largest entries of the last axis, descending; equal values keep the lower index first; NaN ranks as −∞ (tied with it by index). */
  TopK: {
    inputs: { readonly x: Tensor };
    attrs: { readonly k: number };
    output: { readonly values: Tensor; readonly indices: Tensor };
  };
  Concat: {
    inputs: { readonly xs: readonly Tensor[] };
    attrs: { readonly axis: number };
    output: Tensor;
  };
  Slice: {
    inputs: { readonly x: Tensor };
    attrs: { readonly begin: readonly number[]; readonly size: readonly number[] };
    output: Tensor;
  };
  Transpose: {
    inputs: { readonly x: Tensor };
    attrs: { readonly perm: readonly number[] };
    output: Tensor;
  };
  Reduce: {
    inputs: { readonly x: Tensor };
    attrs: { readonly op: ReduceOp; readonly axis: number; readonly keepDims: boolean };
    output: Tensor;
  };
  /** Converts storage dtype (f32 ↔ f16/bf16, quantise/dequantise with per-block scales). */
  Cast: {
    inputs: { readonly x: Tensor };
    attrs: { readonly dtype: DType; readonly blockSize: number; readonly scaleFormat: 'exact' | 'ue8m0' };
    output: Tensor;
  };
}

export type KernelName = keyof KernelContracts;
export type KernelInputs<K extends KernelName> = KernelContracts[K]['inputs'];
export type KernelAttrs<K extends KernelName> = KernelContracts[K]['attrs'];
export type KernelOutput<K extends KernelName> = KernelContracts[K]['output'];

export type KernelFunc<K extends KernelName> = (inputs: KernelInputs<K>, attrs: KernelAttrs<K>) => Promise<KernelOutput<K>>;

/** What a backend implements: one function per kernel contract. */
export type KernelTable = { readonly [K in KernelName]: KernelFunc<K> };

export const KERNEL_NAMES: readonly KernelName[] = [
  'MatMul',
  'Linear',
  'Unary',
  'Binary',
  'Affine',
  'Softmax',
  'LogSumExp',
  'RMSNorm',
  'LayerNorm',
  'RoPE',
  'Gather',
  'WriteSlice',
  'ScatterRows',
  'TopK',
  'Concat',
  'Slice',
  'Transpose',
  'Reduce',
  'Cast',
];
