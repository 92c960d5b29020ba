// Bad input is refused at the boundary with a named error that says what was expected and what
// came, before any work is done or any output allocated.
import {
  AbortedError,
  BackendError,
  CapacityError,
  ConfigError,
  CpuBackend,
  DTypeError,
  ShapeError,
  type Tensor,
  tensor,
  zeros,
} from '@attnkit/tensor-core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { attention, blockSparseAttention, sparseAttention } from './attention.js';
import { dispatchAttention } from './dispatch.js';
import { planAttention } from './plan.js';
import { validateAttention } from './validate.js';

let backend: CpuBackend;
const made: Tensor[] = [];
const t = (shape: number[], dtype: 'f32' | 'f16' | 'i32' = 'f32', fill = 0.5): Tensor => {
  const n = shape.reduce((a, x) => a * x, 1);
  const x = dtype === 'i32' ? tensor(backend, new Int32Array(n).fill(fill), shape, { dtype }) : tensor(backend, new Float32Array(n).fill(fill), shape, { dtype });
  made.push(x);
  return x;
};

beforeEach(() => {
  backend = new CpuBackend();
});
afterEach(async () => {
  made.splice(0).forEach((x) => x.dispose());
  await backend.dispose();
});

type Call = () => Promise<unknown>;
async function expectError(call: Call, kind: new (...args: never[]) => Error, message: RegExp): Promise<void> {
  const before = backend.memory().liveTensors - made.length; // inputs the calls make are counted in `made`
  await expect(call()).rejects.toBeInstanceOf(kind);
  await expect(call()).rejects.toThrow(message);
  expect(backend.memory().liveTensors - made.length, 'nothing allocated by a refused call').toBe(before);
}

describe('attention refuses bad input', () => {
  it('query heads that are not a multiple of the kv heads', async () => {
    await expectError(() => attention(t([1, 2, 3, 4]), t([1, 2, 2, 4]), t([1, 2, 2, 4])), ShapeError, /\[attention\] expected query heads \(3\) to be a multiple of key\/value heads, got 2 kv heads/);
  });
  it('mismatched head dims, batch, ranks and value shapes', async () => {
    await expectError(() => attention(t([1, 2, 2, 4]), t([1, 2, 2, 5]), t([1, 2, 2, 4])), ShapeError, /k's head dim to equal q's \(4\)/);
    await expectError(() => attention(t([2, 2, 2, 4]), t([1, 2, 2, 4]), t([1, 2, 2, 4])), ShapeError, /k of shape \[2, T, Hkv, 4\]/);
    await expectError(() => attention(t([1, 2, 2, 4]), t([1, 2, 2, 4]), t([1, 3, 2, 4])), ShapeError, /v shaped like k/);
    await expectError(() => attention(t([2, 2, 4]), t([1, 2, 2, 4]), t([1, 2, 2, 4])), ShapeError, /q of shape \[B, S, Hq, D\]/);
    await expectError(() => attention(t([1, 2, 2, 4]), t([1, 2, 2, 4]), t([1, 2, 2, 0])), ShapeError, /v with at least one channel/);
  });
  it('more queries than keys under a causal mask (also through kvLengths)', async () => {
    await expectError(() => attention(t([1, 5, 2, 4]), t([1, 4, 2, 4]), t([1, 4, 2, 4])), ShapeError, /at least as many keys as queries under a causal mask \(sequence 0: 5 queries\), got 4 keys/);
    await expectError(() => attention(t([2, 3, 2, 4]), t([2, 4, 2, 4]), t([2, 4, 2, 4]), { kvLengths: [4, 2] }), ShapeError, /sequence 1: 3 queries\), got 2 keys/);
  });
  it('kvLengths of the wrong count or out of range', async () => {
    await expectError(() => attention(t([2, 1, 2, 4]), t([2, 4, 2, 4]), t([2, 4, 2, 4]), { kvLengths: [4] }), ShapeError, /kvLengths of 2 entries, got 1/);
    await expectError(() => attention(t([1, 1, 2, 4]), t([1, 4, 2, 4]), t([1, 4, 2, 4]), { kvLengths: [5] }), ShapeError, /kvLengths\[0\] in \[0, 4\], got 5/);
    await expectError(() => attention(t([1, 1, 2, 4]), t([1, 4, 2, 4]), t([1, 4, 2, 4]), { kvLengths: [1.5] }), ShapeError, /kvLengths\[0\]/);
  });
  it('dtypes: q not f32, k/v as i32, bias not f32, rowMap not i32', async () => {
    await expectError(() => attention(t([1, 1, 2, 4], 'f16'), t([1, 2, 2, 4]), t([1, 2, 2, 4])), DTypeError, /q of dtype f32, got f16/);
    await expectError(() => attention(t([1, 1, 2, 4]), t([1, 2, 2, 4], 'i32'), t([1, 2, 2, 4])), DTypeError, /k of dtype/);
    await expectError(() => attention(t([1, 1, 2, 4]), t([1, 2, 2, 4]), t([1, 2, 2, 4], 'i32')), DTypeError, /v of dtype/);
    await expectError(() => attention(t([1, 1, 2, 4]), t([1, 2, 2, 4]), t([1, 2, 2, 4]), { bias: t([1, 2], 'f16') }), DTypeError, /an f32 bias, got f16/);
    await expectError(() => attention(t([1, 1, 2, 4]), t([3, 2, 4]), t([3, 2, 4]), { rowMap: t([1, 2]) }), DTypeError, /an i32 rowMap, got f32/);
  });
  it('configs: scale, window, sinks, mask, implementation, valueDim', async () => {
    const q = t([1, 2, 2, 4]);
    const k = t([1, 3, 2, 4]);
    const v = t([1, 3, 2, 4]);
    await expectError(() => attention(q, k, v, { scale: NaN }), ConfigError, /a finite softmax scale, got NaN/);
    await expectError(() => attention(q, k, v, { window: 0 }), ConfigError, /a sliding window of ≥ 1 keys, got 0/);
    await expectError(() => attention(q, k, v, { window: 2, mask: 'none' }), ConfigError, /a causal mask with a sliding window/);
    await expectError(() => attention(q, k, v, { sinkTokens: 2 }), ConfigError, /sinkTokens ≥ 0, used together with a window/);
    await expectError(() => attention(q, k, v, { window: 2, sinkTokens: -1 }), ConfigError, /sinkTokens/);
    // @ts-expect-error: a mask kind that does not exist
    await expectError(() => attention(q, k, v, { mask: 'causal-top-left' }), ConfigError, /mask 'causal' or 'none', got causal-top-left/);
    // @ts-expect-error: an implementation that does not exist
    await expectError(() => attention(q, k, v, { implementation: 'fast' }), ConfigError, /implementation 'auto', 'fused', 'composed', 'reference', got fast/);
    await expectError(() => attention(q, k, null), ConfigError, /valueDim in \[1, 4\] when v is null/);
    await expectError(() => attention(q, k, null, { valueDim: 5 }), ConfigError, /valueDim in \[1, 4\]/);
  });
  it('a bias that does not broadcast to [B, Hq, S, T]', async () => {
    const q = t([2, 2, 2, 4]);
    const k = t([2, 3, 2, 4]);
    await expectError(() => attention(q, k, k, { bias: t([2, 4]) }), ShapeError, /broadcasts to \[B, Hq, S, T\] = \[2, 2, 2, 3\], got \[2, 4\]/);
    await expectError(() => attention(q, k, k, { bias: t([3, 2, 3]) }), ShapeError, /broadcasts/);
    await expectError(() => attention(q, k, k, { bias: t([3]) }), ShapeError, /a bias of shape \[S, T\]/);
  });
  it('row maps: wrong shape, a contiguous k, and rows outside the pool for valid keys', async () => {
    const q = t([1, 1, 2, 4]);
    const pool = t([3, 2, 4]);
    await expectError(() => attention(q, pool, pool, { rowMap: t([2, 2], 'i32') }), ShapeError, /rowMap of shape \[1, Tmax\]/);
    await expectError(() => attention(q, t([1, 2, 2, 4]), t([1, 2, 2, 4]), { rowMap: t([1, 2], 'i32') }), ShapeError, /row pool \[R, Hkv, D\]/);
    const bad = tensor(backend, new Int32Array([0, 3]), [1, 2], { dtype: 'i32' });
    made.push(bad);
    await expectError(() => attention(q, pool, pool, { rowMap: bad }), CapacityError, /rowMap entries of the 2 valid keys of sequence 0 in \[0, 3\) \(pool rows\), got 3 at \[0, 1\]/);
    // a stale entry past the valid length is never read
    const r = await attention(q, pool, pool, { rowMap: bad, kvLengths: [1] });
    r.out.dispose();
  });
  it('tensors on another backend, disposed tensors, a disposed backend', async () => {
    const other = new CpuBackend();
    const foreign = tensor(other, new Float32Array(16), [1, 2, 2, 4]);
    await expectError(() => attention(t([1, 1, 2, 4]), foreign, t([1, 2, 2, 4])), BackendError, /every tensor on cpu, got one on cpu/);
    await other.dispose();
    const gone = t([1, 2, 2, 4]);
    gone.dispose();
    await expectError(() => attention(t([1, 1, 2, 4]), gone, t([1, 2, 2, 4])), BackendError, /a live tensor/);
  });
  it('an aborted signal, before and during a long call', async () => {
    const q = t([1, 1, 2, 4]);
    const k = t([1, 2, 2, 4]);
    const controller = new AbortController();
    controller.abort(new Error('user cancelled'));
    await expectError(() => attention(q, k, k, { signal: controller.signal }), AbortedError, /\[attention\] expected to run to completion, got an abort \(user cancelled\)/);

    // A problem of ~1 s on this machine, aborted after 20 ms: the kernel yields between tiles.
    const big = zeros(backend, [1, 2048, 4, 64]);
    made.push(big);
    for (const implementation of ['auto', 'composed'] as const) {
      const live = new AbortController();
      setTimeout(() => live.abort('timeout'), 20);
      const started = performance.now();
      await expect(attention(big, big, big, { signal: live.signal, implementation })).rejects.toBeInstanceOf(AbortedError);
      expect(performance.now() - started, `${implementation} stopped soon after the abort`).toBeLessThan(implementation === 'auto' ? 500 : 5000);
    }
  });
  it("implementation 'fused' when no fused kernel accepts the inputs names every reason", async () => {
    const q = t([1, 1, 2, 4]);
    const k = t([1, 2, 2, 4]);
    const g = validateAttention('attention', q, k, k, {});
    const inputs = { q, k, v: k, bias: null, rowMap: null, selection: null };
    const problem = await planAttention('attention', inputs, {}, g, { kind: 'dense' });
    const decliner = { name: 'never', supports: () => ({ ok: false as const, reason: 'only runs on Tuesdays' }), run: () => Promise.reject(new Error('unreachable')) };
    await expect(dispatchAttention(backend, inputs, problem, 'fused', [decliner])).rejects.toThrow(/\[attention\] expected a fused kernel .*got none: never: only runs on Tuesdays/);
    const fallback = await dispatchAttention(backend, inputs, problem, 'auto', [decliner]);
    expect(fallback.dispatch).toEqual({ implementation: 'composed', declined: 'never: only runs on Tuesdays' });
    fallback.out.dispose();
  });
});

describe('sparse forms refuse bad indices', () => {
  const q = (): Tensor => t([1, 2, 2, 4]);
  const k = (): Tensor => t([1, 5, 2, 4]);
  it('indices of the wrong dtype or shape', async () => {
    await expectError(() => sparseAttention(q(), k(), k(), t([1, 2, 1, 3])), DTypeError, /\[sparseAttention\] expected indices of dtype i32, got f32/);
    await expectError(() => sparseAttention(q(), k(), k(), t([1, 3, 1, 3], 'i32')), ShapeError, /indices of shape \[1, 2, 2 or 1, K\]/);
    await expectError(() => sparseAttention(q(), k(), k(), t([1, 2, 3, 3], 'i32')), ShapeError, /indices of shape/);
  });
  it('indices outside [−1, T)', async () => {
    const idx = tensor(backend, new Int32Array([0, 1, 5, -1, 2, 3]), [1, 2, 1, 3], { dtype: 'i32' });
    made.push(idx);
    await expectError(() => sparseAttention(q(), k(), k(), idx), CapacityError, /indices in \[-1, 5\) \(−1 for none\), got 5 at flat position 2/);
    const neg = tensor(backend, new Int32Array([0, -2]), [1, 2, 1, 1], { dtype: 'i32' });
    made.push(neg);
    await expectError(() => sparseAttention(q(), k(), k(), neg), CapacityError, /got -2 at flat position 1/);
  });
  it('block indices outside [−1, ⌈T/blockSize⌉) and a bad block size', async () => {
    const idx = tensor(backend, new Int32Array([0, 2]), [1, 2, 1, 1], { dtype: 'i32' });
    made.push(idx);
    await expectError(() => blockSparseAttention(q(), k(), k(), idx, { blockSize: 4 }), CapacityError, /blockIndices in \[-1, 2\)/);
    await expectError(() => blockSparseAttention(q(), k(), k(), idx, { blockSize: 0 }), ConfigError, /a positive integer blockSize, got 0/);
  });
  it('more queries than keys when causal, allowed when not', async () => {
    const idx = t([1, 6, 1, 1], 'i32');
    await expectError(() => sparseAttention(t([1, 6, 2, 4]), k(), k(), idx), ShapeError, /at least as many keys as queries/);
    const r = await sparseAttention(t([1, 6, 2, 4]), k(), k(), idx, { causal: false });
    r.out.dispose();
  });
});
