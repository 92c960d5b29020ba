// Gather along axis `batchDims` (tf.gather with batch_dims): out [b..., k..., r...] from
// x [b..., N, r...] and i32 indices [b..., k...]. One thread per output element; int8/fp8 rows
// are decoded on the way. A split source is read one chunk per pass: each pass fills the
// elements whose source lies in its chunk and keeps the previous pass's value elsewhere.

import { sizeOf } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import type { GpujsBackend } from '../backend.js';
import type { DeviceArray } from '../device.js';
import type { KernelSpec } from '../runtime.js';
import { type Arr, type Gpu, INDEX_HELPERS, checkQuotients, fp8Table, idiv } from './common.js';

/**
 * Source element of output element e: gathered row q = ⌊e/g⌋ (batch ⌊q/K⌋, index idx) and
 * offset j = e − q·g, at (batch·N + idx)·g + j.
 */
function gatherSource(e: number, idx: number, N: number, K: number, g: number): number {
  return (idiv(idiv(e, g), K) * N + idx) * g + e - idiv(e, g) * g;
}

function gatherKernel(this: Gpu, x: Arr, indices: Arr, prev: Arr, usePrev: number, cs: number, ce: number, N: number, K: number, g: number): number {
  // The index is read into a local first: an array read nested in another array's index makes
  // gpu.js' GLSL hoist it into a float temporary that it then assigns an int (a compile error).
  const idx = indices[idiv(this.thread.x, g)];
  if (gatherSource(this.thread.x, idx | 0, N, K, g) >= cs && gatherSource(this.thread.x, idx | 0, N, K, g) < ce) {
    return x[gatherSource(this.thread.x, idx | 0, N, K, g) - cs];
  }
  if (usePrev === 1) return prev[this.thread.x];
  return 0;
}

const GATHER: KernelSpec = {
  key: 'gather',
  fn: gatherKernel,
  params: { x: 'array', indices: 'array', prev: 'array', usePrev: 'int', cs: 'int', ce: 'int', N: 'int', K: 'int', g: 'int' },
  rank: 1,
  functions: [gatherSource, ...INDEX_HELPERS],
};

/**
 * Block of a gathered element's source: rows of g elements hold g/bs whole blocks (gpb), or,
 * gathering along the last axis (g = 1), block ⌊idx/bs⌋ of the batch's npb blocks.
 */
function gatherBlock(e: number, idx: number, N: number, K: number, g: number, bs: number, gpb: number, npb: number): number {
  if (gpb > 0) return (idiv(idiv(e, g), K) * N + idx) * gpb + idiv(e - idiv(e, g) * g, bs);
  return idiv(idiv(e, g), K) * npb + idiv(idx, bs);
}

function gatherQuantKernel(
  this: Gpu,
  x: Arr,
  scales: Arr,
  indices: Arr,
  prev: Arr,
  usePrev: number,
  cs: number,
  ce: number,
  cb: number,
  N: number,
  K: number,
  g: number,
  bs: number,
  gpb: number,
  npb: number,
  fp8: number,
): number {
  const idx = indices[idiv(this.thread.x, g)]; // a local, as in gatherKernel
  if (gatherSource(this.thread.x, idx | 0, N, K, g) >= cs && gatherSource(this.thread.x, idx | 0, N, K, g) < ce) {
    const code = (x[(gatherSource(this.thread.x, idx | 0, N, K, g) - cs) >> 1] >> (((gatherSource(this.thread.x, idx | 0, N, K, g) - cs) & 1) * 8)) & 255;
    let q = code >= 128 ? code - 256 : code;
    if (fp8 === 1) q = this.constants.fp8Values[code];
    return q * scales[gatherBlock(this.thread.x, idx | 0, N, K, g, bs, gpb, npb) - cb];
  }
  if (usePrev === 1) return prev[this.thread.x];
  return 0;
}

const GATHER_QUANT: KernelSpec = {
  key: 'gather-quant',
  fn: gatherQuantKernel,
  params: {
    x: 'array',
    scales: 'array',
    indices: 'array',
    prev: 'array',
    usePrev: 'int',
    cs: 'int',
    ce: 'int',
    cb: 'int',
    N: 'int',
    K: 'int',
    g: 'int',
    bs: 'int',
    gpb: 'int',
    npb: 'int',
    fp8: 'int',
  },
  rank: 1,
  constants: { fp8Values: fp8Table() },
  functions: [gatherSource, gatherBlock, ...INDEX_HELPERS],
};

export async function gatherTensor(backend: GpujsBackend, x: Tensor, indices: Tensor, batchDims: number): Promise<Tensor> {
  const fn = 'gather';
  const s = backend.storageOf(x, fn);
  const I = backend.arrayOf(indices, fn);
  const Bb = sizeOf(x.shape.slice(0, batchDims));
  const N = x.shape[batchDims] as number;
  const g = sizeOf(x.shape.slice(batchDims + 1));
  const K = sizeOf(indices.shape.slice(batchDims));
  const shape = [...indices.shape, ...x.shape.slice(batchDims + 1)];
  const size = Bb * K * g;
  if (size === 0) return backend.zeroSized(shape);
  checkQuotients(fn, 'gathered rows', Bb * K, K === 0 ? 0 : Bb);
  const bs = s.blockSize ?? 1;
  if (s.format === 'bytepair') checkQuotients(fn, 'blocks per gathered row', g / bs, N / bs);
  let prev: DeviceArray | null = null;
  for (const chunk of s.chunks) {
    const common: Record<string, DeviceArray | number> = { indices: I, prev: prev ?? backend.dummy, usePrev: prev ? 1 : 0, cs: chunk.start, ce: chunk.start + chunk.length, N, K, g };
    const next: DeviceArray =
      s.format === 'value'
        ? await backend.run(GATHER, { x: chunk.words, ...common }, [size])
        : await backend.run(
            GATHER_QUANT,
            {
              x: chunk.words,
              scales: chunk.scales ?? backend.dummy,
              ...common,
              cb: chunk.start / bs,
              bs,
              gpb: g % bs === 0 ? g / bs : 0,
              npb: N / bs,
              fp8: s.dtype === 'fp8e4m3' ? 1 : 0,
            },
            [size],
          );
    if (prev) backend.device.free(prev);
    prev = next;
  }
  if (!prev) throw new Error('gather over no source chunk');
  return backend.wrap(prev, shape);
}
