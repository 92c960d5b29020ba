// The peers the attention benchmark measures in the same run: onnxruntime-node's contrib
// MultiHeadAttention and GroupQueryAttention operators (one-node models built in code) and a
// tfjs-backend-wasm composition (matmul + softmax + matmul). Each peer gets inputs in its own
// native layout (ORT: [B, S, H·D] and BNSH caches; tfjs: head-major), prepared outside the
// timed call, and a `run()` that computes one attention and waits for the result.

import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import * as ort from 'onnxruntime-node';
import { type OnnxValue, oneNodeModel } from './onnx-graph.bench.js';

export interface AttentionShape {
  readonly B: number;
  /** New tokens (queries). */
  readonly S: number;
  /** Keys: S for prefill, the cache length plus one for decode. */
  readonly T: number;
  readonly Hq: number;
  readonly Hkv: number;
  readonly D: number;
  readonly causal: boolean;
}

export interface PeerRun {
  run(): Promise<void>;
  dispose(): Promise<void>;
}

const random = (n: number): Float32Array => {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
  return a;
};

/** onnxruntime-node's intra-op threads: 1 by default, `ATTNKIT_ORT_THREADS=2` to give it both cores. */
export const ORT_THREADS = Math.max(1, Number(process.env.ATTNKIT_ORT_THREADS ?? 1) || 1);

/** The fixed dims of an input (inputs never use symbolic ones here). */
const dims = (shape: readonly (number | string)[]): number[] => shape.map((d) => (typeof d === 'number' ? d : 1));
const sizeOf = (shape: readonly (number | string)[]): number => dims(shape).reduce((a, x) => a * x, 1);

async function session(model: Uint8Array, threads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(model, { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', logSeverityLevel: 3 });
}

/** com.microsoft.MultiHeadAttention: q [B, S, H·D], k/v [B, T, H·D]; `unidirectional` for causal prefill. */
export async function ortMultiHeadAttention(s: AttentionShape, threads = ORT_THREADS): Promise<PeerRun> {
  if (s.Hq !== s.Hkv) throw new Error('the MultiHeadAttention operator needs as many kv heads as query heads');
  const inputs: OnnxValue[] = [
    { name: 'query', type: 'float32', shape: [s.B, s.S, s.Hq * s.D] },
    { name: 'key', type: 'float32', shape: [s.B, s.T, s.Hq * s.D] },
    { name: 'value', type: 'float32', shape: [s.B, s.T, s.Hq * s.D] },
  ];
  const model = oneNodeModel(
    {
      opType: 'MultiHeadAttention',
      domain: 'com.microsoft',
      inputs: ['query', 'key', 'value'],
      outputs: ['output'],
      attributes: [
        { name: 'num_heads', int: s.Hq },
        { name: 'unidirectional', int: s.causal && s.S === s.T ? 1 : 0 },
        { name: 'scale', float: 1 / Math.sqrt(s.D) },
      ],
    },
    inputs,
    [{ name: 'output', type: 'float32', shape: [s.B, s.S, s.Hq * s.D] }],
  );
  const sess = await session(model, threads);
  const feeds = Object.fromEntries(inputs.map((v) => [v.name, new ort.Tensor('float32', random(sizeOf(v.shape)), dims(v.shape))]));
  return {
    run: async () => {
      await sess.run(feeds);
    },
    dispose: () => sess.release(),
  };
}

/**
 * com.microsoft.GroupQueryAttention (always causal): prefill with no past, or decode of one
 * token after a BNSH past of T − 1 tokens (past and present in separate buffers).
 */
export async function ortGroupQueryAttention(s: AttentionShape, threads = ORT_THREADS): Promise<PeerRun> {
  const past = s.T - s.S;
  const inputs: OnnxValue[] = [
    { name: 'query', type: 'float32', shape: [s.B, s.S, s.Hq * s.D] },
    { name: 'key', type: 'float32', shape: [s.B, s.S, s.Hkv * s.D] },
    { name: 'value', type: 'float32', shape: [s.B, s.S, s.Hkv * s.D] },
    ...(past > 0
      ? [
          { name: 'past_key', type: 'float32', shape: [s.B, s.Hkv, past, s.D] } as const,
          { name: 'past_value', type: 'float32', shape: [s.B, s.Hkv, past, s.D] } as const,
        ]
      : []),
    { name: 'seqlens_k', type: 'int32', shape: [s.B] },
    { name: 'total_sequence_length', type: 'int32', shape: [] },
  ];
  const model = oneNodeModel(
    {
      opType: 'GroupQueryAttention',
      domain: 'com.microsoft',
      inputs: ['query', 'key', 'value', past > 0 ? 'past_key' : '', past > 0 ? 'past_value' : '', 'seqlens_k', 'total_sequence_length'],
      outputs: ['output', 'present_key', 'present_value'],
      attributes: [
        { name: 'num_heads', int: s.Hq },
        { name: 'kv_num_heads', int: s.Hkv },
        { name: 'scale', float: 1 / Math.sqrt(s.D) },
      ],
    },
    inputs,
    [
      { name: 'output', type: 'float32', shape: [s.B, s.S, s.Hq * s.D] },
      // the present length is the operator's choice (past length or total): leave it symbolic
      { name: 'present_key', type: 'float32', shape: [s.B, s.Hkv, 'present_length', s.D] },
      { name: 'present_value', type: 'float32', shape: [s.B, s.Hkv, 'present_length', s.D] },
    ],
  );
  const sess = await session(model, threads);
  const feeds: Record<string, ort.Tensor> = {};
  for (const v of inputs) {
    if (v.name === 'seqlens_k') feeds[v.name] = new ort.Tensor('int32', new Int32Array(s.B).fill(s.T - 1), [s.B]);
    else if (v.name === 'total_sequence_length') feeds[v.name] = new ort.Tensor('int32', new Int32Array([s.T]), []);
    else feeds[v.name] = new ort.Tensor('float32', random(sizeOf(v.shape)), dims(v.shape));
  }
  return {
    run: async () => {
      await sess.run(feeds);
    },
    dispose: () => sess.release(),
  };
}

/** Selects tfjs-backend-wasm (idempotent) and describes it. */
export async function initTfjsWasm(): Promise<string> {
  if (tf.getBackend() !== 'wasm' && !(await tf.setBackend('wasm'))) throw new Error('tfjs wasm backend did not initialise');
  await tf.ready();
  return `tfjs-core ${tf.version_core}, wasm (SIMD ${String(tf.env().getBool('WASM_HAS_SIMD_SUPPORT'))}, threads ${String(tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT'))})`;
}

/**
 * The textbook composition on tfjs-backend-wasm, one kv-head group at a time to bound memory:
 * scores = q kᵀ·scale + mask, softmax, · v. Inputs head-major: q [Hkv, G·S, D], k/v [Hkv, T, D].
 */
export async function tfjsComposition(s: AttentionShape): Promise<PeerRun> {
  await initTfjsWasm();
  const G = s.Hq / s.Hkv;
  const q = tf.tensor3d(random(s.Hkv * G * s.S * s.D), [s.Hkv, G * s.S, s.D]);
  const k = tf.tensor3d(random(s.Hkv * s.T * s.D), [s.Hkv, s.T, s.D]);
  const v = tf.tensor3d(random(s.Hkv * s.T * s.D), [s.Hkv, s.T, s.D]);
  // bottom-right causal mask [G·S, T]: row (g, i) sees keys ≤ T − S + i
  let mask: tf.Tensor2D | null = null;
  if (s.causal && s.S > 1) {
    const m = new Float32Array(G * s.S * s.T);
    for (let g = 0; g < G; g++) for (let i = 0; i < s.S; i++) m.fill(-1e30, (g * s.S + i) * s.T + (s.T - s.S + i + 1), (g * s.S + i + 1) * s.T);
    mask = tf.tensor2d(m, [G * s.S, s.T]);
  }
  const scale = tf.scalar(1 / Math.sqrt(s.D));
  const heads = Array.from({ length: s.Hkv }, (_, h) => ({
    q: tf.reshape(tf.slice(q, [h, 0, 0], [1, G * s.S, s.D]), [G * s.S, s.D]),
    k: tf.reshape(tf.slice(k, [h, 0, 0], [1, s.T, s.D]), [s.T, s.D]),
    v: tf.reshape(tf.slice(v, [h, 0, 0], [1, s.T, s.D]), [s.T, s.D]),
  }));
  return {
    run: async () => {
      for (const head of heads) {
        const o = tf.tidy(() => {
          let scores = tf.mul(tf.matMul(head.q, head.k, false, true), scale);
          if (mask) scores = tf.add(scores, mask);
          return tf.matMul(tf.softmax(scores), head.v);
        });
        await o.data();
        o.dispose();
      }
    },
    dispose: () => {
      tf.dispose([q, k, v, scale, ...(mask ? [mask] : []), ...heads.flatMap((h) => [h.q, h.k, h.v])]);
      return Promise.resolve();
    },
  };
}
