// Masked softmax and log-sum-exp over the last axis. A statistics pass computes each row's max
// and Σexp (one thread per row and statistic), then one thread per element normalises, so a
// row costs three reads of N instead of N² work. The additive mask broadcasts to x through
// strides over at most two collapsed row levels; other mask shapes are expanded first.

import { broadcastStrides, sizeOf } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import type { GpujsBackend } from '../backend.js';
import type { DeviceArray } from '../device.js';
import type { KernelSpec } from '../runtime.js';
import { type Arr, type Gpu, INDEX_HELPERS, checkQuotients, idiv, rowGrid, strided2 } from './common.js';
import { FILL, binaryTensor, collapseBroadcast } from './elementwise.js';

// An entry whose mask is −∞ is hidden: its s is −∞ whatever x holds (a NaN x there must not
// surface). Entries with s = −∞ (hidden, or a visible −∞) add 0 to Σ, tested as `s < −FLT_MAX`
// — true for −∞ only, false for NaN, so a visible NaN reaches Σ (and the row) even where max
// dropped it (WGSL's max may). A row is empty when Σ = 0. The mask entry of row r, column i
// sits at strided2(r, r1n, m0, m1) + i·mN.
//
// Thread 2r computes row r's max of scale·x + mask; thread 2r+1 its Σ exp(s − max).
function softmaxStatsKernel(this: Gpu, x: Arr, mask: Arr, N: number, scale: number, hasMask: number, r1n: number, m0: number, m1: number, mN: number): number {
  let max = -3.4028234663852886e38;
  for (let i = 0; i < N; i++) {
    let s = scale * x[(this.thread.x >> 1) * N + i];
    if (hasMask === 1) {
      s += mask[strided2(this.thread.x >> 1, r1n, m0, m1) + i * mN];
      if (mask[strided2(this.thread.x >> 1, r1n, m0, m1) + i * mN] < -3.4028234663852886e38) s = -3.4028234663852886e38;
    }
    max = Math.max(max, s);
  }
  if ((this.thread.x & 1) === 0) return max;
  let sum = 0;
  for (let n = 0; n < N; n++) {
    let s = scale * x[(this.thread.x >> 1) * N + n];
    if (hasMask === 1) s += mask[strided2(this.thread.x >> 1, r1n, m0, m1) + n * mN];
    let e = Math.exp(s - max);
    if (s < -3.4028234663852886e38) e = 0;
    if (hasMask === 1) {
      if (mask[strided2(this.thread.x >> 1, r1n, m0, m1) + n * mN] < -3.4028234663852886e38) e = 0;
    }
    sum += e;
  }
  return sum;
}

const SOFTMAX_STATS: KernelSpec = {
  key: 'softmax-stats',
  fn: softmaxStatsKernel,
  params: { x: 'array', mask: 'array', N: 'int', scale: 'float', hasMask: 'int', r1n: 'int', m0: 'int', m1: 'int', mN: 'int' },
  rank: 1,
  functions: INDEX_HELPERS,
};

// out[r, i] = exp(s − max_r) / Σ_r, or 0 for a row whose every entry is −∞.
function softmaxApplyKernel(
  this: Gpu,
  x: Arr,
  mask: Arr,
  stats: Arr,
  N: number,
  scale: number,
  hasMask: number,
  r1n: number,
  m0: number,
  m1: number,
  mN: number,
): number {
  const max = stats[idiv(this.thread.x, N) * 2];
  let s = scale * x[this.thread.x];
  if (hasMask === 1) {
    if (mask[strided2(idiv(this.thread.x, N), r1n, m0, m1) + (this.thread.x - idiv(this.thread.x, N) * N) * mN] < -3.4028234663852886e38) return 0;
    s += mask[strided2(idiv(this.thread.x, N), r1n, m0, m1) + (this.thread.x - idiv(this.thread.x, N) * N) * mN];
  }
  if (s < -3.4028234663852886e38) return 0;
  return Math.exp(s - max) / stats[idiv(this.thread.x, N) * 2 + 1];
}

const SOFTMAX_APPLY: KernelSpec = {
  key: 'softmax-apply',
  fn: softmaxApplyKernel,
  params: { x: 'array', mask: 'array', stats: 'array', N: 'int', scale: 'float', hasMask: 'int', r1n: 'int', m0: 'int', m1: 'int', mN: 'int' },
  rank: 1,
  functions: INDEX_HELPERS,
};

// The same over a grid [N, Y, Z] (row z·Y + y, column x): no division per element, for rows
// that fit one grid dimension.
function softmaxApplyRowsKernel(
  this: Gpu,
  x: Arr,
  mask: Arr,
  stats: Arr,
  N: number,
  R: number,
  Y: number,
  scale: number,
  hasMask: number,
  r1n: number,
  m0: number,
  m1: number,
  mN: number,
): number {
  if (this.thread.z * Y + this.thread.y >= R) return 0;
  const max = stats[(this.thread.z * Y + this.thread.y) * 2];
  let s = scale * x[(this.thread.z * Y + this.thread.y) * N + this.thread.x];
  if (hasMask === 1) {
    if (mask[strided2(this.thread.z * Y + this.thread.y, r1n, m0, m1) + this.thread.x * mN] < -3.4028234663852886e38) return 0;
    s += mask[strided2(this.thread.z * Y + this.thread.y, r1n, m0, m1) + this.thread.x * mN];
  }
  if (s < -3.4028234663852886e38) return 0;
  return Math.exp(s - max) / stats[(this.thread.z * Y + this.thread.y) * 2 + 1];
}

const SOFTMAX_APPLY_ROWS: KernelSpec = {
  key: 'softmax-apply-rows',
  fn: softmaxApplyRowsKernel,
  params: {
    x: 'array',
    mask: 'array',
    stats: 'array',
    N: 'int',
    R: 'int',
    Y: 'int',
    scale: 'float',
    hasMask: 'int',
    r1n: 'int',
    m0: 'int',
    m1: 'int',
    mN: 'int',
  },
  rank: 3,
  functions: INDEX_HELPERS,
};

// lse of row r: max + ln Σ exp(s − max), −∞ when the row is empty (Σ = 0); hidden entries and
// NaN as in the softmax statistics.
function logSumExpKernel(this: Gpu, x: Arr, mask: Arr, N: number, scale: number, hasMask: number, r1n: number, m0: number, m1: number, mN: number): number {
  let max = -3.4028234663852886e38;
  for (let i = 0; i < N; i++) {
    let s = scale * x[this.thread.x * N + i];
    if (hasMask === 1) {
      s += mask[strided2(this.thread.x, r1n, m0, m1) + i * mN];
      if (mask[strided2(this.thread.x, r1n, m0, m1) + i * mN] < -3.4028234663852886e38) s = -3.4028234663852886e38;
    }
    max = Math.max(max, s);
  }
  let sum = 0;
  for (let n = 0; n < N; n++) {
    let s = scale * x[this.thread.x * N + n];
    if (hasMask === 1) s += mask[strided2(this.thread.x, r1n, m0, m1) + n * mN];
    let e = Math.exp(s - max);
    if (s < -3.4028234663852886e38) e = 0;
    if (hasMask === 1) {
      if (mask[strided2(this.thread.x, r1n, m0, m1) + n * mN] < -3.4028234663852886e38) e = 0;
    }
    sum += e;
  }
  // An empty row (Σ = 0) is −∞: GL's log(0) is finite and gpu.js writes a literal −∞ as the
  // lowest float there, so it comes from an overflow at run time (min(max, −3e38)·2 < −f32max on
  // every mode). A NaN Σ is not 0: the row stays NaN.
  if (sum === 0) return Math.min(max, -3.0e38) * 2;
  return max + Math.log(sum);
}

const LOG_SUM_EXP: KernelSpec = {
  key: 'log-sum-exp',
  fn: logSumExpKernel,
  params: { x: 'array', mask: 'array', N: 'int', scale: 'float', hasMask: 'int', r1n: 'int', m0: 'int', m1: 'int', mN: 'int' },
  rank: 1,
  functions: INDEX_HELPERS,
};

interface MaskAddressing {
  readonly mask: DeviceArray;
  readonly hasMask: number;
  readonly r1n: number;
  readonly m0: number;
  readonly m1: number;
  readonly mN: number;
  /** A full-size mask made for an unusual broadcast, to free after the kernels ran. */
  readonly expanded: Tensor | null;
}

/** The mask's strides over x's rows, collapsed to two levels; expands the mask when that fails. */
async function maskAddressing(backend: GpujsBackend, fn: string, x: Tensor, mask: Tensor | null): Promise<MaskAddressing> {
  if (!mask) return { mask: backend.dummy, hasMask: 0, r1n: 1, m0: 0, m1: 0, mN: 0, expanded: null };
  const strides = broadcastStrides(mask.shape, x.shape);
  const mN = strides[strides.length - 1] ?? 0;
  const levels = collapseBroadcast(x.shape.slice(0, -1), [strides.slice(0, -1)]);
  const s = levels.strides[0] ?? [];
  if (levels.dims.length === 1) return { mask: backend.arrayOf(mask, fn), hasMask: 1, r1n: levels.dims[0] ?? 1, m0: 0, m1: s[0] ?? 0, mN, expanded: null };
  if (levels.dims.length === 2) return { mask: backend.arrayOf(mask, fn), hasMask: 1, r1n: levels.dims[1] ?? 1, m0: s[0] ?? 0, m1: s[1] ?? 0, mN, expanded: null };
  // Broadcast the mask to x's shape once (0 + mask over x's shape), then walk it densely.
  using zero = backend.zeros(x.shape, 'f32');
  const expanded = await binaryTensor(backend, zero, mask, 'add');
  const N = x.shape[x.rank - 1] ?? 1;
  return { mask: backend.arrayOf(expanded, fn), hasMask: 1, r1n: Math.max(1, x.size / Math.max(N, 1)), m0: 0, m1: N, mN: 1, expanded };
}

export async function softmaxTensor(backend: GpujsBackend, x: Tensor, mask: Tensor | null, scale: number): Promise<Tensor> {
  const fn = 'softmax';
  const N = x.shape[x.rank - 1] ?? 1;
  const R = N === 0 ? 0 : x.size / N;
  const X = backend.arrayOf(x, fn);
  if (x.size === 0) return backend.zeroSized(x.shape);
  checkQuotients(fn, 'rows', R);
  const m = await maskAddressing(backend, fn, x, mask);
  try {
    const stats = await backend.run(SOFTMAX_STATS, { x: X, mask: m.mask, N, scale, hasMask: m.hasMask, r1n: m.r1n, m0: m.m0, m1: m.m1, mN: m.mN }, [2 * R]);
    try {
      const common = { x: X, mask: m.mask, stats, N, scale, hasMask: m.hasMask, r1n: m.r1n, m0: m.m0, m1: m.m1, mN: m.mN };
      if (N <= backend.gridLimits.maxY) {
        const { grid, Y } = rowGrid(N, R, backend.gridLimits);
        return backend.wrap(await backend.run(SOFTMAX_APPLY_ROWS, { ...common, R, Y }, grid), x.shape);
      }
      const out = await backend.run(SOFTMAX_APPLY, common, [x.size]);
      return backend.wrap(out, x.shape);
    } finally {
      backend.device.free(stats);
    }
  } finally {
    m.expanded?.dispose();
  }
}

export async function logSumExpTensor(backend: GpujsBackend, x: Tensor, mask: Tensor | null, scale: number): Promise<Tensor> {
  const fn = 'logSumExp';
  const N = x.shape[x.rank - 1] ?? 1;
  const shape = x.shape.slice(0, -1);
  const R = sizeOf(shape);
  const X = backend.arrayOf(x, fn);
  if (R === 0) return backend.zeroSized(shape);
  if (N === 0) {
    // ln Σ over an empty row is −∞
    const out = await backend.run(FILL, { value: -Infinity }, [R]);
    return backend.wrap(out, shape);
  }
  const m = await maskAddressing(backend, fn, x, mask);
  try {
    const out = await backend.run(LOG_SUM_EXP, { x: X, mask: m.mask, N, scale, hasMask: m.hasMask, r1n: m.r1n, m0: m.m0, m1: m.m1, mN: m.mN }, [R]);
    return backend.wrap(out, shape);
  } finally {
    m.expanded?.dispose();
  }
}
