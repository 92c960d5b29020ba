// The attention visualiser's computation: for one input, the dense score matrix of every head,
// computed with tensor-core's public ops on the demo's backend, then checked against the
// attention core (`attention()` from @attnkit/attention-mha) on the same input.
//
// Axis letters: B batch (1 here), S queries, T keys (= S: a prefill), H query heads, Hkv kv heads,
// G = H / Hkv query heads per kv head, D head dim.

import { attention } from '@attnkit/attention-mha';
import {
  type Backend,
  type Tensor,
  arange,
  matmul,
  reshape,
  rope,
  ropeInvFreq,
  softmax,
  tensor,
  transpose,
} from '@attnkit/tensor-core';
import { DemoRandom } from '../demo/random.js';

export interface VisualiserInput {
  /** Tokens S (queries = keys: a causal prefill). */
  readonly seqLen: number;
  /** Query heads H. */
  readonly heads: number;
  /** Key/value heads Hkv (divides H; 1 = MQA, H = MHA). */
  readonly kvHeads: number;
  /** Head dim D (even: RoPE rotates all of it). */
  readonly headDim: number;
  readonly causal: boolean;
  readonly seed: number;
}

export interface DenseScores {
  readonly input: VisualiserInput;
  /** softmax(q·kᵀ/√D + mask), [H, S, T] row-major: row i of head h sums to 1 over its visible keys. */
  readonly probs: Float32Array;
  /** The scaled scores q·kᵀ/√D before the mask, [H, S, T]. */
  readonly logits: Float32Array;
  /** Whether query i sees key t, [S, T] (1 visible, 0 masked). */
  readonly visible: Uint8Array;
  /** max |P·V − attention(q, k, v)| over every output value: the two paths must agree. */
  readonly maxAbsDiff: number;
  /** Which implementation `attention()` dispatched to on this backend. */
  readonly attentionImplementation: string;
}

export function validateInput(input: VisualiserInput): string | null {
  const { seqLen, heads, kvHeads, headDim } = input;
  const positiveInt = (n: number): boolean => Number.isInteger(n) && n > 0;
  if (![seqLen, heads, kvHeads, headDim].every(positiveInt)) return 'sizes must be positive integers';
  if (heads % kvHeads !== 0) return `query heads (${heads}) must be a multiple of kv heads (${kvHeads})`;
  if (headDim % 2 !== 0) return `head dim must be even for RoPE (got ${headDim})`;
  if (seqLen > 256) return 'at most 256 tokens (the heatmap draws S × S cells per head)';
  return null;
}

/** The demo's queries, keys and values before RoPE, token-major: q [S, H, D], k and v [S, Hkv, D]. */
export interface HostInputs {
  readonly q: Float32Array;
  readonly k: Float32Array;
  readonly v: Float32Array;
}

/**
 * Queries and keys with structure worth looking at. Each query head has a content vector; the
 * keys of kv head g carry the content of g's first query head, plus noise. After RoPE (half-split,
 * θ = 10000) a score depends on the content match and on the distance i − t, so the first head
 * of every group attends locally — the bright diagonal — while the others, sharing the same keys
 * with unrelated queries, spread out: GQA's trade-off in one picture.
 */
export function makeInputs(input: VisualiserInput): HostInputs {
  const { seqLen: S, heads: H, kvHeads: Hkv, headDim: D } = input;
  const G = H / Hkv;
  const rng = new DemoRandom(input.seed);
  const qContent = rng.normals(H * D, 1.5);
  const kContent = new Float32Array(Hkv * D);
  for (let g = 0; g < Hkv; g++) {
    for (let d = 0; d < D; d++) kContent[g * D + d] = (qContent[g * G * D + d] as number) + rng.normal() * 0.5;
  }
  const q = new Float32Array(S * H * D);
  const k = new Float32Array(S * Hkv * D);
  for (let s = 0; s < S; s++) {
    for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) q[(s * H + h) * D + d] = (qContent[h * D + d] as number) + rng.normal() * 0.4;
    for (let g = 0; g < Hkv; g++) for (let d = 0; d < D; d++) k[(s * Hkv + g) * D + d] = (kContent[g * D + d] as number) + rng.normal() * 0.4;
  }
  const v = rng.normals(S * Hkv * D);
  return { q, k, v };
}

/**
 * q [1, S, H, D] and k [1, T, Hkv, D] rotated by RoPE at positions 0…S−1 (half-split pairs,
 * θ = 10 000), v [1, T, Hkv, D]: the tensors every view of the demo starts from. Every tensor
 * made here goes through `keep`, which owns it.
 */
export async function projectedInputs(
  backend: Backend,
  input: VisualiserInput,
  host: HostInputs,
  keep: <X extends Tensor>(t: X) => X,
): Promise<{ q: Tensor; k: Tensor; v: Tensor }> {
  const { seqLen: S, heads: H, kvHeads: Hkv, headDim: D } = input;
  const positions = keep(arange(backend, 0, S));
  const invFreq = keep(tensor(backend, ropeInvFreq({ dim: D }), [D / 2]));
  const q = keep(await rope(keep(tensor(backend, host.q, [1, S, H, D])), positions, invFreq, { layout: 'halfsplit' }));
  const k = keep(await rope(keep(tensor(backend, host.k, [1, S, Hkv, D])), positions, invFreq, { layout: 'halfsplit' }));
  const v = keep(tensor(backend, host.v, [1, S, Hkv, D]));
  return { q, k, v };
}

/** Computes the dense scores of every head on `backend`; every intermediate tensor is disposed. */
export async function denseScores(backend: Backend, input: VisualiserInput): Promise<DenseScores> {
  const problem = validateInput(input);
  if (problem) throw new RangeError(`denseScores: ${problem}`);
  const { seqLen: S, heads: H, kvHeads: Hkv, headDim: D, causal } = input;
  const G = H / Hkv;
  const T = S;
  const host = makeInputs(input);
  const held: Tensor[] = [];
  const keep = <X extends Tensor>(t: X): X => {
    held.push(t);
    return t;
  };
  try {
    const { q, k, v } = await projectedInputs(backend, input, host, keep);

    // Query heads of one kv group are consecutive (h = g·G + r), so [1, H, S, D] regroups as
    // [1, Hkv, G·S, D] without copying, and one batched matmul covers the group's heads.
    const qT = keep(await transpose(q, [0, 2, 1, 3])); // [1, H, S, D]
    const qGrouped = keep(reshape(qT, [1, Hkv, G * S, D]));
    const kT = keep(await transpose(k, [0, 2, 1, 3])); // [1, Hkv, T, D]
    const rawGrouped = keep(await matmul(qGrouped, kT, { transposeB: true })); // [1, Hkv, G·S, T]
    const raw = keep(reshape(rawGrouped, [1, H, S, T]));

    // Bottom-right causal mask (spec §1): query i at position T − S + i sees keys 0..T − S + i.
    const visible = new Uint8Array(S * T);
    const maskValues = new Float32Array(S * T);
    for (let i = 0; i < S; i++) {
      for (let t = 0; t < T; t++) {
        const sees = !causal || t <= T - S + i;
        visible[i * T + t] = sees ? 1 : 0;
        maskValues[i * T + t] = sees ? 0 : -Infinity;
      }
    }
    const mask = keep(tensor(backend, maskValues, [S, T]));
    const scale = 1 / Math.sqrt(D);
    const probs = keep(await softmax(raw, { scale, mask })); // [1, H, S, T]

    // P·V through the same grouping, back to token-major [1, S, H, D]
    const vT = keep(await transpose(v, [0, 2, 1, 3])); // [1, Hkv, T, D]
    const oGrouped = keep(await matmul(keep(reshape(probs, [1, Hkv, G * S, T])), vT)); // [1, Hkv, G·S, D]
    const o = keep(await transpose(keep(reshape(oGrouped, [1, H, S, D])), [0, 2, 1, 3]));

    const reference = await attention(q, k, v, { mask: causal ? 'causal' : 'none' });
    keep(reference.out);
    const [probsData, rawData, oData, refData] = await Promise.all([probs.data(), raw.data(), o.data(), reference.out.data()]);
    let maxAbsDiff = 0;
    for (let i = 0; i < oData.length; i++) maxAbsDiff = Math.max(maxAbsDiff, Math.abs((oData[i] as number) - (refData[i] as number)));
    const logits = rawData.map((x) => x * scale);
    return { input, probs: probsData, logits, visible, maxAbsDiff, attentionImplementation: reference.dispatch.implementation };
  } finally {
    for (const t of held) t.dispose();
  }
}

/** Head h's [S, T] slice of a [H, S, T] array. */
export function headSlice(values: Float32Array, head: number, S: number, T: number): Float32Array {
  return values.subarray(head * S * T, (head + 1) * S * T);
}
