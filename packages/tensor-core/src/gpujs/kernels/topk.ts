// Top-k of each row by a bitonic sort of index permutations: log2(P)·(log2(P)+1)/2 passes over
// rows padded to P = 2^⌈log2 N⌉ entries, each pass one compare-exchange per element. The order
// is total, so the result is deterministic: larger values first, equal values by lower index,
// NaN ranked as −∞, padding last. Then the first k entries are gathered. On WebGPU the
// one-dispatch WGSL radix select of webgpu-topk.ts runs instead when it takes the sizes.

import { sizeOf } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import type { GpujsBackend } from '../backend.js';
import type { DeviceArray } from '../device.js';
import type { KernelSpec } from '../runtime.js';
import { topKWebGpu, webgpuTopKDeclines } from '../webgpu-topk.js';
import { type Arr, type Gpu, INDEX_HELPERS, checkQuotients, idiv, isNan } from './common.js';

/**
 * 1 when element a (value va) ranks before element b (value vb): larger first, equal values by
 * lower index, NaN ranked as −∞ (tied with it by index), padding (index ≥ N) last.
 */
function ranksBefore(a: number, b: number, va: number, vb: number, N: number): number {
  if (a >= N) return b >= N && a < b ? 1 : 0;
  if (b >= N) return 1;
  // NaN or −∞ (`< −FLT_MAX` holds for −∞ only); numeric flags, as gpu.js types locals as numbers
  let lowA = isNan(va);
  if (va < -3.4028234663852886e38) lowA = 1;
  let lowB = isNan(vb);
  if (vb < -3.4028234663852886e38) lowB = 1;
  if (lowA === 1) return lowB === 1 && a < b ? 1 : 0;
  if (lowB === 1) return 1;
  return va > vb || (va === vb && a < b) ? 1 : 0;
}

// Position i of row r in a pass with block k and stride j: compare-exchange of the pair
// (lo, hi) = (min(i, i^j), max(i, i^j)). Both threads of a pair evaluate the same comparison
// (lo's element against hi's), so the result is a permutation whatever the comparator does;
// in a descending block (lo & k = 0) lo keeps the element that ranks first.
function bitonicPassKernel(this: Gpu, x: Arr, perm: Arr, first: number, N: number, P: number, logP: number, k: number, j: number): number {
  // lo, hi: the pair's positions in the row; a, b: the elements at lo and hi
  const lo = Math.min(this.thread.x & (P - 1), (this.thread.x & (P - 1)) ^ j);
  const hi = Math.max(this.thread.x & (P - 1), (this.thread.x & (P - 1)) ^ j);
  let a = lo;
  let b = hi;
  if (first === 0) {
    a = perm[((this.thread.x >> logP) << logP) + (lo | 0)];
    b = perm[((this.thread.x >> logP) << logP) + (hi | 0)];
  }
  const aFirst = ranksBefore(a, b, x[(this.thread.x >> logP) * N + Math.min(a, N - 1)], x[(this.thread.x >> logP) * N + Math.min(b, N - 1)], N);
  const descending = ((lo | 0) & k) === 0 ? 1 : 0;
  // the element that goes to lo
  let atLo = aFirst === 1 ? a : b;
  if (descending === 0) atLo = aFirst === 1 ? b : a;
  if ((this.thread.x & (P - 1)) === (lo | 0)) return atLo;
  return atLo === a ? b : a;
}

const BITONIC_PASS: KernelSpec = {
  key: 'topk-bitonic-pass',
  fn: bitonicPassKernel,
  params: { x: 'array', perm: 'array', first: 'int', N: 'int', P: 'int', logP: 'int', k: 'int', j: 'int' },
  rank: 1,
  functions: [ranksBefore, isNan],
};

// Output e = r·K + t: the t-th best of row r, as its value (wantIndex 0) or its index.
function topKPickKernel(this: Gpu, x: Arr, perm: Arr, sorted: number, N: number, P: number, K: number, wantIndex: number): number {
  let i = this.thread.x - idiv(this.thread.x, K) * K;
  if (sorted === 1) i = perm[idiv(this.thread.x, K) * P + this.thread.x - idiv(this.thread.x, K) * K];
  if (wantIndex === 1) return i;
  return x[idiv(this.thread.x, K) * N + (i | 0)];
}

const TOPK_PICK: KernelSpec = {
  key: 'topk-pick',
  fn: topKPickKernel,
  params: { x: 'array', perm: 'array', sorted: 'int', N: 'int', P: 'int', K: 'int', wantIndex: 'int' },
  rank: 1,
  functions: INDEX_HELPERS,
};

export async function topKTensor(backend: GpujsBackend, x: Tensor, k: number): Promise<{ values: Tensor; indices: Tensor }> {
  const fn = 'topK';
  const N = x.shape[x.rank - 1] as number;
  const R = N === 0 ? 0 : x.size / N;
  const shape = [...x.shape.slice(0, -1), k];
  const X = backend.arrayOf(x, fn);
  if (sizeOf(shape) === 0) return { values: backend.zeroSized(shape), indices: backend.zeroSized(shape, 'i32') };
  checkQuotients(fn, 'rows', R);
  const fast = topKFastPath(backend, X, R, N, k);
  if (fast) return { values: backend.wrap(fast.values, shape), indices: backend.wrap(fast.indices, shape, 'i32') };
  const logP = Math.ceil(Math.log2(N));
  const P = 2 ** logP;
  let perm: DeviceArray | null = null;
  try {
    for (let block = 2; block <= P; block *= 2) {
      for (let stride = block / 2; stride >= 1; stride /= 2) {
        const next: DeviceArray = await backend.run(
          BITONIC_PASS,
          { x: X, perm: perm ?? backend.dummy, first: perm ? 0 : 1, N, P, logP, k: block, j: stride },
          [R * P],
        );
        if (perm) backend.device.free(perm);
        perm = next;
      }
    }
    const common = { x: X, perm: perm ?? backend.dummy, sorted: perm ? 1 : 0, N, P, K: k };
    const values = await backend.run(TOPK_PICK, { ...common, wantIndex: 0 }, [R * k]);
    const indices = await backend.run(TOPK_PICK, { ...common, wantIndex: 1 }, [R * k]);
    return { values: backend.wrap(values, shape), indices: backend.wrap(indices, shape, 'i32') };
  } finally {
    if (perm) backend.device.free(perm);
  }
}

/** On WebGPU, the one-dispatch WGSL top-k (webgpu-topk.ts) when it takes the sizes; else null. */
function topKFastPath(backend: GpujsBackend, x: DeviceArray, rows: number, N: number, k: number): { values: DeviceArray; indices: DeviceArray } | null {
  const webgpu = backend.webgpu;
  if (!webgpu || x.kind !== 'gpu' || webgpuTopKDeclines(webgpu.device, rows, N, k) !== null) return null;
  const values = backend.device.alloc(rows * k, 'f32');
  const indices = backend.device.alloc(rows * k, 'f32');
  if (values.kind !== 'gpu' || indices.kind !== 'gpu') {
    backend.device.free(values);
    backend.device.free(indices);
    return null;
  }
  topKWebGpu(backend, webgpu.device, x, rows, N, k, values, indices);
  return { values, indices };
}
