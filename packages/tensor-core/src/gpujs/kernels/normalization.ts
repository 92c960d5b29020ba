// RMSNorm and LayerNorm over the last axis: a statistics pass (one thread per row and
// statistic), then one thread per element. Weights and biases may be f32, f16 or bf16 storage:
// all three hold values a kernel reads directly.

import type { Tensor } from '../../tensor.js';
import type { GpujsBackend } from '../backend.js';
import type { KernelSpec } from '../runtime.js';
import { type Arr, type Gpu, INDEX_HELPERS, checkQuotients, idiv, rowGrid } from './common.js';

// 1 / sqrt(mean(x²) + eps) of row thread.x
function rmsStatsKernel(this: Gpu, x: Arr, D: number, eps: number): number {
  let ss = 0;
  for (let i = 0; i < D; i++) {
    const v = x[this.thread.x * D + i];
    ss += v * v;
  }
  return 1 / Math.sqrt(ss / D + eps);
}

const RMS_STATS: KernelSpec = { key: 'rms-stats', fn: rmsStatsKernel, params: { x: 'array', D: 'int', eps: 'float' }, rank: 1 };

// Thread 2r: mean of row r; thread 2r+1: 1 / sqrt(biased variance + eps), two-pass.
function layerStatsKernel(this: Gpu, x: Arr, D: number, eps: number): number {
  let mean = 0;
  for (let i = 0; i < D; i++) mean += x[(this.thread.x >> 1) * D + i];
  mean = mean / D;
  if ((this.thread.x & 1) === 0) return mean;
  let variance = 0;
  for (let n = 0; n < D; n++) {
    const d = x[(this.thread.x >> 1) * D + n] - mean;
    variance += d * d;
  }
  return 1 / Math.sqrt(variance / D + eps);
}

const LAYER_STATS: KernelSpec = { key: 'layer-stats', fn: layerStatsKernel, params: { x: 'array', D: 'int', eps: 'float' }, rank: 1 };

// y = (x − mean) · inv ⊙ w + b for element e of row r = ⌊e / D⌋, channel c = e − r·D; RMSNorm
// has no mean and one statistic per row.
function normApplyKernel(this: Gpu, x: Arr, stats: Arr, w: Arr, b: Arr, D: number, centered: number, hasWeight: number, hasBias: number): number {
  const v = x[this.thread.x];
  let y = v * stats[idiv(this.thread.x, D)];
  if (centered === 1) y = (v - stats[idiv(this.thread.x, D) * 2]) * stats[idiv(this.thread.x, D) * 2 + 1];
  if (hasWeight === 1) y = y * w[this.thread.x - idiv(this.thread.x, D) * D];
  if (hasBias === 1) y = y + b[this.thread.x - idiv(this.thread.x, D) * D];
  return y;
}

const NORM_APPLY: KernelSpec = {
  key: 'norm-apply',
  fn: normApplyKernel,
  params: { x: 'array', stats: 'array', w: 'array', b: 'array', D: 'int', centered: 'int', hasWeight: 'int', hasBias: 'int' },
  rank: 1,
  functions: INDEX_HELPERS,
};

// The same over a grid [D, Y, Z] (row z·Y + y): no division per element.
function normApplyRowsKernel(
  this: Gpu,
  x: Arr,
  stats: Arr,
  w: Arr,
  b: Arr,
  D: number,
  R: number,
  Y: number,
  centered: number,
  hasWeight: number,
  hasBias: number,
): number {
  if (this.thread.z * Y + this.thread.y >= R) return 0;
  const v = x[(this.thread.z * Y + this.thread.y) * D + this.thread.x];
  let y = v * stats[this.thread.z * Y + this.thread.y];
  if (centered === 1) y = (v - stats[(this.thread.z * Y + this.thread.y) * 2]) * stats[(this.thread.z * Y + this.thread.y) * 2 + 1];
  if (hasWeight === 1) y = y * w[this.thread.x];
  if (hasBias === 1) y = y + b[this.thread.x];
  return y;
}

const NORM_APPLY_ROWS: KernelSpec = {
  key: 'norm-apply-rows',
  fn: normApplyRowsKernel,
  params: { x: 'array', stats: 'array', w: 'array', b: 'array', D: 'int', R: 'int', Y: 'int', centered: 'int', hasWeight: 'int', hasBias: 'int' },
  rank: 3,
};

export async function normTensor(
  backend: GpujsBackend,
  kind: 'rms' | 'layer',
  x: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  eps: number,
): Promise<Tensor> {
  const fn = kind === 'rms' ? 'rmsNorm' : 'layerNorm';
  const D = x.shape[x.rank - 1] ?? 1;
  const R = D === 0 ? 0 : x.size / D;
  const X = backend.arrayOf(x, fn);
  const W = weight ? backend.arrayOf(weight, fn) : backend.dummy;
  const B = bias ? backend.arrayOf(bias, fn) : backend.dummy;
  if (x.size === 0) return backend.zeroSized(x.shape);
  checkQuotients(fn, 'rows', R);
  const stats =
    kind === 'rms' ? await backend.run(RMS_STATS, { x: X, D, eps }, [R]) : await backend.run(LAYER_STATS, { x: X, D, eps }, [2 * R]);
  try {
    const common = { x: X, stats, w: W, b: B, D, centered: kind === 'layer' ? 1 : 0, hasWeight: weight ? 1 : 0, hasBias: bias ? 1 : 0 };
    if (D <= backend.gridLimits.maxY) {
      const { grid, Y } = rowGrid(D, R, backend.gridLimits);
      return backend.wrap(await backend.run(NORM_APPLY_ROWS, { ...common, R, Y }, grid), x.shape);
    }
    return backend.wrap(await backend.run(NORM_APPLY, common, [x.size]), x.shape);
  } finally {
    backend.device.free(stats);
  }
}
