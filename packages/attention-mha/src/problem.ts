// What every implementation of the attention core receives: the tensors of one call and the
// problem they pose, already validated. Fused kernels declare what they accept through
// `supports`, in the style of MLX's fast.cpp (`use_fallback` returns a reason).
//
// Axis letters: B batch, S queries, T logical keys, Hq / Hkv heads, D / Dv head dims, R pool rows.

import type { Backend, Tensor } from '@attnkit/tensor-core';
import type { AttentionGeometry } from './validate.js';

/** The tensors of one attention call, as the caller passed them. */
export interface AttentionInputs {
  /** f32 [B, S, Hq, D]. */
  readonly q: Tensor;
  /** [B, T, Hkv, D], or a row pool [R, Hkv, D] with a rowMap; f32, f16, bf16, int8 or fp8e4m3. */
  readonly k: Tensor;
  /** [..., Hkv, Dv] shaped like k, or null when values are the first Dv channels of each key row. */
  readonly v: Tensor | null;
  /** f32 additive mask broadcasting to [B, Hq, S, T]. */
  readonly bias: Tensor | null;
  /** i32 [B, T]: pool row of each logical key. */
  readonly rowMap: Tensor | null;
  /** i32 [B, S, Hkv|1, K] key indices or block indices (sparse forms only). */
  readonly selection: Tensor | null;
}

/** Which keys a query may see before causality, windows and lengths are applied. */
export type KeySelection =
  | { readonly kind: 'dense' }
  | {
      readonly kind: 'indices';
      /** [B, S, Hkv|1, width] logical key indices, −1 for none; checked to lie in [−1, T). */
      readonly values: Int32Array;
      readonly perHead: boolean;
      readonly width: number;
    }
  | {
      readonly kind: 'blocks';
      /** [B, S, Hkv|1, width] block indices, −1 for none; checked to lie in [−1, ⌈T/blockSize⌉). */
      readonly values: Int32Array;
      readonly perHead: boolean;
      readonly width: number;
      readonly blockSize: number;
    };

/** The validated problem: sizes, mask settings, and the small index data read to the host. */
export interface AttentionProblem extends AttentionGeometry {
  /** The public function that was called, for error messages. */
  readonly fn: string;
  readonly selection: KeySelection;
  /** Host copy of the row map (entries of visible keys checked to lie in [0, R)), or null. */
  readonly rowMap: Int32Array | null;
  /** Rows of the key pool (R) with a row map, else B·T. */
  readonly poolRows: number;
  /** Bias broadcast shape [B|1, Hq|1, S|1, T|1], or null. */
  readonly biasShape: readonly [number, number, number, number] | null;
  readonly returnLse: boolean;
  readonly signal: AbortSignal | undefined;
}

export interface AttentionOutputs {
  /** [B, S, Hq, Dv] */
  readonly out: Tensor;
  /** [B, S, Hq] when the problem asks for it. */
  readonly lse: Tensor | null;
}

export type KernelSupport = { readonly ok: true } | { readonly ok: false; readonly reason: string };

/**
 * A fused implementation of the attention core for one backend family. `supports` must be
 * cheap and side-effect free; when it returns `ok: false` the dispatcher tries the next kernel
 * and finally the composed fallback, and reports the reason in `AttentionResult.dispatch`.
 */
export interface FusedAttentionKernel {
  /** Short stable name, reported as `fused:<name>`. */
  readonly name: string;
  supports(backend: Backend, inputs: AttentionInputs, problem: AttentionProblem): KernelSupport;
  run(backend: Backend, inputs: AttentionInputs, problem: AttentionProblem): Promise<AttentionOutputs>;
}
