// The contract of the attention core that every attnkit variant reuses.
//
// Axis letters: B batch, S new tokens (queries), T keys, Hq query heads, Hkv key/value heads,
// D query/key head dim, Dv value head dim, K keys per query (sparse), R physical key rows.

import type { Tensor } from '@attnkit/tensor-core';

/**
 * Where a sequence's keys live. Without a `rowMap`, k is [B, T, Hkv, D] and key t of sequence
 * b is row (b, t). With a `rowMap` (paged and ring-buffer caches), k and v are row pools
 * [R, Hkv, D] / [R, Hkv, Dv] and logical key t of sequence b is pool row rowMap[b, t]; the
 * kernels follow the map, so nothing is gathered into a contiguous copy first.
 */
export interface KeyLayout {
  /** i32 [B, Tmax]: physical pool row of each logical key. */
  readonly rowMap?: Tensor | null;
}

export type MaskKind = 'causal' | 'none';

export type AttentionImplementation = 'auto' | 'fused' | 'composed' | 'reference';

export interface AttentionOptions extends KeyLayout {
  /** Softmax scale; default 1/√D. */
  readonly scale?: number;
  /**
   * `causal` (default): bottom-right aligned — query i of the S new tokens of sequence b sits
   * at absolute position p = len_b − S + i and sees keys 0..p (decode and chunked prefill work
   * as they should; spec pitfall 1). `none`: every valid key.
   */
  readonly mask?: MaskKind;
  /** Sliding window: with a causal mask, query p sees keys (p − window, p] — `window` keys, itself included. */
  readonly window?: number;
  /** With a window: the first `sinkTokens` keys stay visible to every query (StreamingLLM's attention sinks). */
  readonly sinkTokens?: number;
  /**
   * Valid keys per sequence (B numbers, each ≤ T). Keys at t ≥ len_b are invisible and the
   * queries sit at the end of each sequence. Default: T for every sequence.
   */
  readonly kvLengths?: readonly number[];
  /**
   * Extra additive mask (0 keeps, −∞ hides), combined with the above: f32 [S, T], [B, S, T]
   * or [B, Hq, S, T] (size-1 axes broadcast). Keys are logical positions.
   */
  readonly bias?: Tensor | null;
  /**
   * When `v` is null, values are the first `valueDim` channels of each key row (MLA's
   * absorbed form stores [latent ‖ k_pe] once and reads the latent as V, as FlashMLA does).
   */
  readonly valueDim?: number;
  /** Also return the log-sum-exp of each query row's scaled, masked scores. */
  readonly returnLse?: boolean;
  /**
   * `auto` (default): the first fused kernel that accepts the inputs on this backend, else the
   * composed fallback. `fused`: a fused kernel or a ConfigError saying why each one declined.
   * `composed`: the fallback built from tensor-core primitives (any backend). `reference`: the
   * float64 host oracle (reads every input to the host; for debugging and tests, never fast).
   */
  readonly implementation?: AttentionImplementation;
  readonly signal?: AbortSignal;
}

export interface AttentionResult {
  /** [B, S, Hq, Dv]. A query that sees no key outputs zeros. */
  readonly out: Tensor;
  /** [B, S, Hq], natural log; −∞ for a query that sees no key. Present when `returnLse`. */
  readonly lse?: Tensor;
  /** Which implementation ran, and why the fused one declined if it did. */
  readonly dispatch: DispatchReport;
}

export interface DispatchReport {
  /** `fused:<kernel>` (e.g. `fused:cpu-flash`), `composed` or `reference`. */
  readonly implementation: string;
  /** Why each fused kernel declined (`<kernel>: <reason>; …`), when one did or was not asked for. */
  readonly declined?: string;
}

export interface SparseAttentionOptions extends Omit<AttentionOptions, 'window' | 'mask'> {
  /**
   * Causality still applies to the listed keys (a key after the query's position is hidden),
   * default true. Set false for non-causal sparse attention.
   */
  readonly causal?: boolean;
  /**
   * The caller guarantees that each row's listed keys are distinct and within [−1, Tmax) — a
   * top-k's output, as DSA's indexer makes on the device. A decode step on the gpujs-webgpu
   * backend then reads the list where it lies instead of reading it back to check it (one queue
   * drain per call saved); an entry that is not a visible key is skipped there. Other calls
   * check the list as usual. Default false.
   */
  readonly distinctIndices?: boolean;
}

// Sparse semantics: the listed keys form a set (a key listed twice counts once); −1 means "no
// key"; a listed key that is not visible (t ≥ len_b, or after the query under causality) is
// ignored, as DSA's top-k can pick masked positions when fewer keys are visible than k. An
// index outside [−1, Tmax) (or a block outside [−1, ⌈Tmax/blockSize⌉)) is a CapacityError.

export interface BlockSparseAttentionOptions extends Omit<SparseAttentionOptions, 'distinctIndices'> {
  /** Keys per block (NSA's selection block l′). Block j covers keys [j·blockSize, (j+1)·blockSize). */
  readonly blockSize: number;
}
