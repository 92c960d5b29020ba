// Bad input to every op throws a named error whose message says `[fn] expected X, got Y`.
// Validation happens before any kernel runs, so the CPU backend covers every backend.
import { describe, expect, it } from 'vitest';
import { CpuBackend } from '../cpu/backend.js';
import { AttnkitError, BackendError, CapacityError, ConfigError, DTypeError, ShapeError } from '../errors.js';
import type { Tensor } from '../tensor.js';
import * as op from './index.js';

type ErrorClass = typeof ShapeError | typeof DTypeError | typeof ConfigError | typeof CapacityError | typeof BackendError;

async function expectError(run: () => unknown, kind: ErrorClass, fn: string): Promise<void> {
  let caught: unknown = null;
  try {
    await run();
  } catch (error) {
    caught = error;
  }
  expect(caught, `${fn} should throw ${kind.name}`).toBeInstanceOf(kind);
  expect(AttnkitError.isInstance(caught)).toBe(true);
  const message = caught instanceof Error ? caught.message : '';
  expect(message).toMatch(new RegExp(`^\\[${fn.replace('.', '\\.')}\\] expected .+, got .+$`, 's'));
}

describe('op validation', () => {
  const b = new CpuBackend();
  const other = new CpuBackend();
  const f32 = (shape: number[]): Tensor => op.zeros(b, shape);
  const i32 = (values: number[], shape = [values.length]): Tensor => op.tensor(b, values, shape, { dtype: 'i32' });

  it('tensor, zeros, reshape', async () => {
    await expectError(() => op.tensor(b, [1, 2, 3], [2, 2]), ShapeError, 'tensor');
    await expectError(() => op.tensor(b, [1, 2], [2, -1]), ShapeError, 'tensor');
    await expectError(() => op.tensor(b, [1.5], [1], { dtype: 'i32' }), DTypeError, 'tensor');
    await expectError(() => op.zeros(b, [2, 1.5]), ShapeError, 'zeros');
    await expectError(() => op.reshape(f32([2, 3]), [-1, -1]), ShapeError, 'reshape');
    await expectError(() => op.reshape(f32([2, 3]), [4, 2]), ShapeError, 'reshape');
    const q = await op.quantize(f32([2, 4]), 'int8', { blockSize: 2 });
    await expectError(() => op.reshape(q, [4, 2]), ShapeError, 'reshape');
  });

  it('matmul and linear', async () => {
    await expectError(() => op.matmul(op.tensor(b, [1], [1, 1], { dtype: 'f16' }), f32([1, 1])), DTypeError, 'matmul');
    await expectError(() => op.matmul(f32([3]), f32([3, 2])), ShapeError, 'matmul');
    await expectError(() => op.matmul(f32([2, 3]), f32([4, 2])), ShapeError, 'matmul');
    await expectError(() => op.matmul(f32([2, 2, 3]), f32([3, 3, 2])), ShapeError, 'matmul');
    await expectError(() => op.matmul(f32([2, 3]), op.zeros(other, [3, 2])), BackendError, 'matmul');
    await expectError(() => op.linear(f32([2, 3]), f32([4, 2])), ShapeError, 'linear');
    await expectError(() => op.linear(f32([2, 3]), f32([4, 3, 1])), ShapeError, 'linear');
    await expectError(() => op.linear(f32([2, 3]), op.zeros(b, [4, 3], 'i32')), DTypeError, 'linear');
    await expectError(() => op.linear(f32([2, 3]), f32([4, 3]), f32([3])), ShapeError, 'linear');
    await expectError(() => op.linear(op.zeros(b, [2, 3], 'bf16'), f32([4, 3])), DTypeError, 'linear');
  });

  it('elementwise', async () => {
    await expectError(() => op.silu(op.zeros(b, [2], 'i32')), DTypeError, 'silu');
    await expectError(() => op.add(f32([2, 3]), f32([4])), ShapeError, 'add');
    await expectError(() => op.maximum(f32([2]), op.zeros(b, [2], 'f16')), DTypeError, 'maximum');
    await expectError(() => op.affine(f32([2]), NaN), ConfigError, 'affine');
    await expectError(() => op.affine(f32([2]), 1, Infinity), ConfigError, 'affine');
  });

  it('softmax and logSumExp', async () => {
    await expectError(() => op.softmax(f32([2, 3]), { mask: f32([4]) }), ShapeError, 'softmax');
    await expectError(() => op.softmax(f32([2, 3]), { mask: f32([2, 2, 3]) }), ShapeError, 'softmax');
    await expectError(() => op.softmax(f32([2, 3]), { scale: NaN }), ConfigError, 'softmax');
    await expectError(() => op.logSumExp(f32([2, 3]), { mask: op.zeros(b, [3], 'f16') }), DTypeError, 'logSumExp');
    await expectError(() => op.logSumExp(f32([]), {}), ShapeError, 'logSumExp');
  });

  it('normalisation', async () => {
    await expectError(() => op.rmsNorm(f32([2, 3]), f32([2])), ShapeError, 'rmsNorm');
    await expectError(() => op.rmsNorm(f32([2, 3]), f32([3]), 0), ConfigError, 'rmsNorm');
    const q = await op.quantize(f32([4]), 'int8');
    await expectError(() => op.rmsNorm(f32([2, 4]), q), DTypeError, 'rmsNorm');
    await expectError(() => op.layerNorm(f32([2, 3]), f32([3]), f32([1, 3])), ShapeError, 'layerNorm');
    await expectError(() => op.layerNorm(f32([2, 3]), null, null, -1), ConfigError, 'layerNorm');
  });

  it('rope', async () => {
    const x = f32([1, 2, 2, 8]);
    const pos = i32([0, 1]);
    const inv = f32([4]);
    await expectError(() => op.rope(f32([2, 8]), pos, inv, { layout: 'interleaved' }), ShapeError, 'rope');
    await expectError(() => op.rope(x, f32([2]), inv, { layout: 'interleaved' }), DTypeError, 'rope');
    await expectError(() => op.rope(x, pos, inv, { layout: 'interleaved', width: 5 }), ConfigError, 'rope');
    await expectError(() => op.rope(x, pos, f32([2]), { layout: 'interleaved', offset: 4, width: 6 }), ConfigError, 'rope');
    await expectError(() => op.rope(x, pos, f32([3]), { layout: 'interleaved' }), ShapeError, 'rope');
    await expectError(() => op.rope(x, i32([0, 1, 2]), inv, { layout: 'halfsplit' }), ShapeError, 'rope');
    // @ts-expect-error an unknown layout from untyped callers
    await expectError(() => op.rope(x, pos, inv, { layout: 'neox' }), ConfigError, 'rope');
  });

  it('gather, indices, writeSlice, scatterRows, topK', async () => {
    await expectError(() => op.gather(f32([4, 2]), f32([2])), DTypeError, 'gather');
    await expectError(() => op.gather(f32([4, 2]), i32([1]), { batchDims: 2 }), ConfigError, 'gather');
    await expectError(() => op.gather(f32([2, 4]), i32([1, 2, 3], [3, 1]), { batchDims: 1 }), ShapeError, 'gather');
    await expectError(() => op.validateIndices(i32([0, 4]), 4), CapacityError, 'validateIndices');
    await expectError(() => op.writeSlice(f32([2, 4, 3]), f32([2, 2, 2]), 1, 0), ShapeError, 'writeSlice');
    await expectError(() => op.writeSlice(f32([2, 4, 3]), f32([2, 2, 3]), 1, 3), CapacityError, 'writeSlice');
    await expectError(() => op.writeSlice(f32([2, 4, 3]), op.zeros(b, [2, 1, 3], 'i32'), 1, 0), DTypeError, 'writeSlice');
    const cache = op.zeros(b, [2, 8], 'int8', 4);
    await expectError(() => op.writeSlice(cache, f32([2, 2]), 1, 0), ShapeError, 'writeSlice');
    await expectError(() => op.writeSlice(cache, f32([2, 4]), -1, 2), ShapeError, 'writeSlice');
    await expectError(() => op.scatterRows(f32([4, 3]), f32([2, 3]), i32([0, 1], [1, 2])), ShapeError, 'scatterRows');
    await expectError(() => op.scatterRows(f32([4, 3]), f32([2, 2]), i32([0, 1])), ShapeError, 'scatterRows');
    await expectError(() => op.topK(f32([2, 3]), 4), ConfigError, 'topK');
    await expectError(() => op.topK(f32([2, 3]), 0), ConfigError, 'topK');
    await expectError(() => op.topK(op.zeros(b, [3], 'i32'), 1), DTypeError, 'topK');
  });

  it('layout', async () => {
    await expectError(() => op.concat([], 0), ShapeError, 'concat');
    await expectError(() => op.concat([f32([2, 3]), f32([2, 4])], 0), ShapeError, 'concat');
    await expectError(() => op.concat([f32([2, 3]), op.zeros(b, [2, 3], 'i32')], 0), DTypeError, 'concat');
    await expectError(() => op.concat([f32([2, 3])], 2), ShapeError, 'concat');
    await expectError(() => op.slice(f32([2, 3]), [0]), ShapeError, 'slice');
    await expectError(() => op.slice(f32([2, 3]), [1, 1], [2, 1]), ShapeError, 'slice');
    await expectError(() => op.slice(op.zeros(b, [2, 8], 'fp8e4m3', 4), [0, 2], [2, 4]), ShapeError, 'slice');
    await expectError(() => op.transpose(f32([2, 3]), [0, 0]), ConfigError, 'transpose');
    await expectError(() => op.transpose(op.zeros(b, [2, 4], 'int8', 4), [1, 0]), DTypeError, 'transpose');
  });

  it('reductions and casts', async () => {
    await expectError(() => op.sum(f32([2, 3]), 2), ShapeError, 'sum');
    await expectError(() => op.max(op.zeros(b, [2], 'bf16')), DTypeError, 'max');
    await expectError(() => op.cast(f32([2, 3]), 'i32'), ConfigError, 'cast');
    await expectError(() => op.cast(f32([2, 6]), 'int8', { blockSize: 4 }), ShapeError, 'cast');
    await expectError(() => op.quantize(op.zeros(b, [4], 'i32'), 'int8'), DTypeError, 'quantize');
  });

  it('disposed tensors and backends', async () => {
    const t = f32([2]);
    t.dispose();
    await expectError(() => t.data(), BackendError, 'Tensor.data');
    await expectError(() => op.relu(t), BackendError, 'relu');
    await expectError(() => f32([2]).dataInt(), DTypeError, 'Tensor.dataInt');
    const gone = new CpuBackend();
    const kept = op.zeros(gone, [2]);
    await gone.dispose();
    await expectError(() => op.zeros(gone, [2]), BackendError, 'zeros');
    await expectError(() => op.relu(kept), BackendError, 'relu');
  });
});
