// Matrix products. Each output element is one thread's dot product over K, read with strides
// that cover both transposes. A split operand (a weight or key matrix larger than one binding)
// is consumed one chunk per pass: every pass adds the terms whose operand elements fall into
// its chunk to the previous pass's partial sums.

import { BackendError, formatShape } from '../../errors.js';
import { broadcastShapes, broadcastStrides, sizeOf } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import type { GpujsBackend } from '../backend.js';
import type { DeviceArray } from '../device.js';
import type { KernelSpec } from '../runtime.js';
import { type Arr, type Gpu, INDEX_HELPERS, fp8Table, rowGrid, strided2 } from './common.js';
import { collapseBroadcast } from './elementwise.js';
import { gemmFits, gemmWebGpu } from '../webgpu-gemm.js';

// out[z, y, x] = Σ_k a[z·a1 + y·aM + k·aK] · b[z·b1 + k·bK + x·bN]: one batch level (strides a1,
// b1; 0 where an operand broadcasts), both transposes through the strides.
function matmulKernel(this: Gpu, a: Arr, b: Arr, K: number, aM: number, aK: number, bK: number, bN: number, a1: number, b1: number): number {
  // four independent partial sums (unrolled by 4), then the K mod 4 tail
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  for (let q = 0; q < K >> 2; q++) {
    s0 += a[this.thread.z * a1 + this.thread.y * aM + 4 * q * aK] * b[this.thread.z * b1 + 4 * q * bK + this.thread.x * bN];
    s1 += a[this.thread.z * a1 + this.thread.y * aM + (4 * q + 1) * aK] * b[this.thread.z * b1 + (4 * q + 1) * bK + this.thread.x * bN];
    s2 += a[this.thread.z * a1 + this.thread.y * aM + (4 * q + 2) * aK] * b[this.thread.z * b1 + (4 * q + 2) * bK + this.thread.x * bN];
    s3 += a[this.thread.z * a1 + this.thread.y * aM + (4 * q + 3) * aK] * b[this.thread.z * b1 + (4 * q + 3) * bK + this.thread.x * bN];
  }
  for (let r = 0; r < (K & 3); r++) {
    s0 += a[this.thread.z * a1 + this.thread.y * aM + (((K >> 2) << 2) + r) * aK] * b[this.thread.z * b1 + (((K >> 2) << 2) + r) * bK + this.thread.x * bN];
  }
  return s0 + s1 + (s2 + s3);
}

const MATMUL: KernelSpec = {
  key: 'matmul',
  fn: matmulKernel,
  params: { a: 'array', b: 'array', K: 'int', aM: 'int', aK: 'int', bK: 'int', bN: 'int', a1: 'int', b1: 'int' },
  rank: 3,
};

// Two batch levels: z splits into (⌊z / z1n⌋, z mod z1n), each with its own operand strides.
function matmulBatch2Kernel(
  this: Gpu,
  a: Arr,
  b: Arr,
  K: number,
  aM: number,
  aK: number,
  bK: number,
  bN: number,
  z1n: number,
  a0: number,
  a1: number,
  b0: number,
  b1: number,
): number {
  let sum = 0;
  for (let k = 0; k < K; k++) {
    sum += a[strided2(this.thread.z, z1n, a0, a1) + this.thread.y * aM + k * aK] * b[strided2(this.thread.z, z1n, b0, b1) + k * bK + this.thread.x * bN];
  }
  return sum;
}

const MATMUL_BATCH2: KernelSpec = {
  key: 'matmul-batch2',
  fn: matmulBatch2Kernel,
  params: { a: 'array', b: 'array', K: 'int', aM: 'int', aK: 'int', bK: 'int', bN: 'int', z1n: 'int', a0: 'int', a1: 'int', b0: 'int', b1: 'int' },
  rank: 3,
  functions: INDEX_HELPERS,
};

// The same product when b is split: this pass adds the terms whose b element lies in the
// chunk [cs, ce) to `prev` (the previous passes' sums).
function matmulChunkKernel(
  this: Gpu,
  a: Arr,
  b: Arr,
  prev: Arr,
  usePrev: number,
  cs: number,
  ce: number,
  K: number,
  aM: number,
  aK: number,
  bK: number,
  bN: number,
  z1n: number,
  a0: number,
  a1: number,
  b0: number,
  b1: number,
): number {
  let sum = usePrev === 1 ? prev[this.thread.x + this.output.x * (this.thread.y + this.output.y * this.thread.z)] : 0;
  for (let k = 0; k < K; k++) {
    if (strided2(this.thread.z, z1n, b0, b1) + k * bK + this.thread.x * bN >= cs && strided2(this.thread.z, z1n, b0, b1) + k * bK + this.thread.x * bN < ce) {
      sum += a[strided2(this.thread.z, z1n, a0, a1) + this.thread.y * aM + k * aK] * b[strided2(this.thread.z, z1n, b0, b1) + k * bK + this.thread.x * bN - cs];
    }
  }
  return sum;
}

const MATMUL_CHUNK: KernelSpec = {
  key: 'matmul-chunk',
  fn: matmulChunkKernel,
  params: {
    a: 'array',
    b: 'array',
    prev: 'array',
    usePrev: 'int',
    cs: 'int',
    ce: 'int',
    K: 'int',
    aM: 'int',
    aK: 'int',
    bK: 'int',
    bN: 'int',
    z1n: 'int',
    a0: 'int',
    a1: 'int',
    b0: 'int',
    b1: 'int',
  },
  rank: 3,
  functions: INDEX_HELPERS,
};

export async function matmulTensor(backend: GpujsBackend, a: Tensor, b: Tensor, transposeA: boolean, transposeB: boolean): Promise<Tensor> {
  const fn = 'matmul';
  const M = a.shape[a.rank - (transposeA ? 1 : 2)] as number;
  const K = a.shape[a.rank - (transposeA ? 2 : 1)] as number;
  const N = b.shape[b.rank - (transposeB ? 2 : 1)] as number;
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batch = broadcastShapes(batchA, batchB, fn);
  const shape = [...batch, M, N];
  const A = backend.arrayOf(a, fn);
  const bStorage = backend.storageOf(b, fn);
  if (sizeOf(shape) === 0) return backend.zeroSized(shape);
  // Batch offsets in elements: a matrix of a is M·K elements, of b K·N.
  const levels = collapseBroadcast(batch, [
    broadcastStrides(batchA, batch).map((s) => s * M * K),
    broadcastStrides(batchB, batch).map((s) => s * K * N),
  ]);
  if (levels.dims.length > 2) {
    throw new BackendError({ fn, expected: 'batch dimensions that broadcast in at most two levels on the gpu.js backends', got: `${formatShape(a.shape)} · ${formatShape(b.shape)}` });
  }
  while (levels.dims.length < 2) {
    levels.dims.unshift(1);
    for (const s of levels.strides) s.unshift(0);
  }
  const z0n = levels.dims[0] ?? 1;
  const z1n = levels.dims[1] ?? 1;
  const sa = levels.strides[0] ?? [];
  const sb = levels.strides[1] ?? [];
  const common = {
    K,
    aM: transposeA ? 1 : K,
    aK: transposeA ? M : 1,
    bK: transposeB ? 1 : N,
    bN: transposeB ? K : 1,
    z1n,
    a0: sa[0] ?? 0,
    a1: sa[1] ?? 0,
    b0: sb[0] ?? 0,
    b1: sb[1] ?? 0,
  };
  const grid = [N, M, z0n * z1n] as const;
  if (bStorage.chunks.length <= 1) {
    const B = backend.arrayOf(b, fn);
    const fast =
      z0n === 1
        ? await gemmFastPath(backend, A, B, null, { M, N, K, batch: z1n, aM: common.aM, aK: common.aK, bK: common.bK, bN: common.bN, a1: common.a1, b1: common.b1 })
        : null;
    if (fast) return backend.wrap(fast, shape);
    const out =
      z0n === 1
        ? await backend.run(MATMUL, { a: A, b: B, K, aM: common.aM, aK: common.aK, bK: common.bK, bN: common.bN, a1: common.a1, b1: common.b1 }, grid)
        : await backend.run(MATMUL_BATCH2, { a: A, b: B, ...common }, grid);
    return backend.wrap(out, shape);
  }
  let prev: DeviceArray | null = null;
  for (const chunk of bStorage.chunks) {
    const next: DeviceArray = await backend.run(
      MATMUL_CHUNK,
      { a: A, b: chunk.words, prev: prev ?? backend.dummy, usePrev: prev ? 1 : 0, cs: chunk.start, ce: chunk.start + chunk.length, ...common },
      grid,
    );
    if (prev) backend.device.free(prev);
    prev = next;
  }
  if (!prev) throw new Error('matmul over a split operand ran no pass');
  return backend.wrap(prev, shape);
}

/**
 * On WebGPU, the hand-written WGSL GEMM (see webgpu-gemm.ts) when every operand is one GPU
 * buffer and the grid fits one dispatch; null to take the gpu.js kernel.
 */
function gemmFastPath(
  backend: GpujsBackend,
  a: DeviceArray,
  b: DeviceArray,
  bias: DeviceArray | null,
  o: { M: number; N: number; K: number; batch: number; aM: number; aK: number; bK: number; bN: number; a1: number; b1: number },
): Promise<DeviceArray | null> {
  const webgpu = backend.webgpu;
  const placeholder = backend.dummy;
  if (!webgpu || a.kind !== 'gpu' || b.kind !== 'gpu' || placeholder.kind !== 'gpu' || (bias && bias.kind !== 'gpu')) return Promise.resolve(null);
  if (!gemmFits(webgpu.device, o.M, o.N, o.batch, Math.max(a.words, b.words, o.batch * o.M * o.N))) return Promise.resolve(null);
  const out = backend.device.alloc(o.batch * o.M * o.N, 'f32');
  if (out.kind !== 'gpu') return Promise.resolve(null);
  gemmWebGpu(backend, webgpu.device, { a, b, bias: bias && bias.kind === 'gpu' ? bias : null, ...o }, out, placeholder);
  return Promise.resolve(out);
}

// y[r, o] = Σ_i x[r, i] · w[o, i] (+ bias[o]) for weight rows whose elements fall into the
// chunk [cs, ce) (the whole weight when unsplit), added to `prev` for later chunks.
function linearKernel(
  this: Gpu,
  x: Arr,
  w: Arr,
  bias: Arr,
  prev: Arr,
  I: number,
  R: number,
  Y: number,
  hasBias: number,
  usePrev: number,
  cs: number,
  ce: number,
): number {
  if (this.thread.z * Y + this.thread.y >= R) return 0;
  const lo = Math.min(Math.max(cs - this.thread.x * I, 0), I);
  const hi = Math.min(Math.max(ce - this.thread.x * I, 0), I);
  let sum = 0;
  if (usePrev === 1) {
    sum = prev[this.thread.x + this.output.x * (this.thread.y + Y * this.thread.z)];
  } else if (hasBias === 1) {
    sum = bias[this.thread.x];
  }
  // unrolled by 4 into independent partial sums, then the tail
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  // The loops run to the argument I and break at the chunk's own count: gpu.js takes a bound
  // computed from locals for a constant one and WebGL1's GLSL rejects such a loop; a bound from
  // an argument makes it emit the loop WebGL1 accepts (LOOP_MAX with a break).
  for (let q = 0; q < I; q++) {
    if (q >= ((hi - lo) | 0) >> 2) break;
    sum += x[(this.thread.z * Y + this.thread.y) * I + (lo | 0) + 4 * q] * w[this.thread.x * I + (lo | 0) + 4 * q - cs];
    s1 += x[(this.thread.z * Y + this.thread.y) * I + (lo | 0) + 4 * q + 1] * w[this.thread.x * I + (lo | 0) + 4 * q + 1 - cs];
    s2 += x[(this.thread.z * Y + this.thread.y) * I + (lo | 0) + 4 * q + 2] * w[this.thread.x * I + (lo | 0) + 4 * q + 2 - cs];
    s3 += x[(this.thread.z * Y + this.thread.y) * I + (lo | 0) + 4 * q + 3] * w[this.thread.x * I + (lo | 0) + 4 * q + 3 - cs];
  }
  for (let t = 0; t < I; t++) {
    if (t >= ((hi - lo) | 0) - ((((hi - lo) | 0) >> 2) << 2)) break;
    sum += x[(this.thread.z * Y + this.thread.y) * I + (lo | 0) + ((((hi - lo) | 0) >> 2) << 2) + t] * w[this.thread.x * I + (lo | 0) + ((((hi - lo) | 0) >> 2) << 2) + t - cs];
  }
  return sum + s1 + (s2 + s3);
}

const LINEAR: KernelSpec = {
  key: 'linear',
  fn: linearKernel,
  params: { x: 'array', w: 'array', bias: 'array', prev: 'array', I: 'int', R: 'int', Y: 'int', hasBias: 'int', usePrev: 'int', cs: 'int', ce: 'int' },
  rank: 3,
};

// The same with int8 / fp8 weight rows [rowLo, rowHi) of this chunk: code bytes decoded from
// byte pairs, times the block scale, exactly as the host decodes them.
function linearQuantKernel(
  this: Gpu,
  x: Arr,
  w: Arr,
  scales: Arr,
  bias: Arr,
  prev: Arr,
  I: number,
  R: number,
  Y: number,
  bs: number,
  nb: number,
  fp8: number,
  hasBias: number,
  usePrev: number,
  rowLo: number,
  rowHi: number,
): number {
  if (this.thread.z * Y + this.thread.y >= R) return 0;
  let sum = 0;
  if (usePrev === 1) {
    sum = prev[this.thread.x + this.output.x * (this.thread.y + Y * this.thread.z)];
  } else if (hasBias === 1) {
    sum = bias[this.thread.x];
  }
  if (this.thread.x < rowLo || this.thread.x >= rowHi) return sum;
  for (let blk = 0; blk < nb; blk++) {
    const scale = scales[(this.thread.x - rowLo) * nb + blk];
    for (let j = 0; j < bs; j++) {
      const code =
        (w[((this.thread.x - rowLo) * I + blk * bs + j) >> 1] >> ((((this.thread.x - rowLo) * I + blk * bs + j) & 1) * 8)) & 255;
      let q = code >= 128 ? code - 256 : code;
      if (fp8 === 1) q = this.constants.fp8Values[code];
      sum += x[(this.thread.z * Y + this.thread.y) * I + blk * bs + j] * (q * scale);
    }
  }
  return sum;
}

const LINEAR_QUANT: KernelSpec = {
  key: 'linear-quant',
  fn: linearQuantKernel,
  params: {
    x: 'array',
    w: 'array',
    scales: 'array',
    bias: 'array',
    prev: 'array',
    I: 'int',
    R: 'int',
    Y: 'int',
    bs: 'int',
    nb: 'int',
    fp8: 'int',
    hasBias: 'int',
    usePrev: 'int',
    rowLo: 'int',
    rowHi: 'int',
  },
  rank: 3,
  constants: { fp8Values: fp8Table() },
};

export async function linearTensor(backend: GpujsBackend, x: Tensor, weight: Tensor, bias: Tensor | null): Promise<Tensor> {
  const fn = 'linear';
  const I = x.shape[x.rank - 1] as number;
  const O = weight.shape[0] as number;
  const R = I === 0 ? sizeOf(x.shape.slice(0, -1)) : x.size / I;
  const shape = [...x.shape.slice(0, -1), O];
  const X = backend.arrayOf(x, fn);
  const w = backend.storageOf(weight, fn);
  const B = bias ? backend.arrayOf(bias, fn) : backend.dummy;
  if (R * O === 0) return backend.zeroSized(shape);
  if (w.format === 'value' && w.chunks.length === 1) {
    const W = backend.arrayOf(weight, fn);
    const fast = await gemmFastPath(backend, X, W, bias ? B : null, { M: R, N: O, K: I, batch: 1, aM: I, aK: 1, bK: 1, bN: I, a1: 0, b1: 0 });
    if (fast) return backend.wrap(fast, shape);
  }
  const { grid, Y } = rowGrid(O, R, backend.gridLimits);
  const chunks = w.chunks.length > 0 ? w.chunks : [{ start: 0, length: 0, words: backend.dummy, scales: backend.dummy }];
  let prev: DeviceArray | null = null;
  for (const chunk of chunks) {
    const common = { x: X, bias: B, prev: prev ?? backend.dummy, I, R, Y, hasBias: bias ? 1 : 0, usePrev: prev ? 1 : 0 };
    let next: DeviceArray;
    if (w.format === 'value') {
      next = await backend.run(LINEAR, { ...common, w: chunk.words, cs: chunk.start, ce: chunk.start + chunk.length }, grid);
    } else {
      const bs = w.blockSize ?? I;
      if (chunk.start % I !== 0) throw new BackendError({ fn, expected: 'quantised weight chunks of whole rows', got: `a chunk starting at element ${chunk.start}` });
      next = await backend.run(
        LINEAR_QUANT,
        {
          ...common,
          w: chunk.words,
          scales: chunk.scales ?? backend.dummy,
          bs,
          nb: I / bs,
          fp8: w.dtype === 'fp8e4m3' ? 1 : 0,
          rowLo: chunk.start / I,
          rowHi: (chunk.start + chunk.length) / I,
        },
        grid,
      );
    }
    if (prev) backend.device.free(prev);
    prev = next;
  }
  if (!prev) throw new Error('linear ran no pass');
  return backend.wrap(prev, shape);
}
