// Layout kernels: slice and transpose (one strided gather over at most four collapsed index
// levels, split sources read one chunk per pass), concat (up to four inputs per pass), and the
// byte-pair unpack/pack that lets int8/fp8 storage be sliced exactly.

import { BackendError, formatShape } from '../../errors.js';
import { type Shape, sizeOf, stridesOf } from '../../shape.js';
import type { Tensor } from '../../tensor.js';
import type { GpujsBackend } from '../backend.js';
import type { DeviceArray } from '../device.js';
import type { KernelSpec } from '../runtime.js';
import { type Chunk, type Storage, wordsOf } from '../storage.js';
import { type Arr, type Gpu, INDEX_HELPERS, checkQuotients, idiv, strided4 } from './common.js';
import { collapseBroadcast } from './elementwise.js';

// out[e] = x[base + strided4(e, …)] when that source element lies in this pass's chunk
// [cs, ce), else the previous pass's value (0 on the first pass).
function stridedCopyKernel(
  this: Gpu,
  x: Arr,
  prev: Arr,
  usePrev: number,
  cs: number,
  ce: number,
  base: number,
  d1: number,
  d2: number,
  d3: number,
  s0: number,
  s1: number,
  s2: number,
  s3: number,
): number {
  if (base + strided4(this.thread.x, d1, d2, d3, s0, s1, s2, s3) >= cs && base + strided4(this.thread.x, d1, d2, d3, s0, s1, s2, s3) < ce) {
    return x[base + strided4(this.thread.x, d1, d2, d3, s0, s1, s2, s3) - cs];
  }
  if (usePrev === 1) return prev[this.thread.x];
  return 0;
}

const STRIDED_COPY: KernelSpec = {
  key: 'strided-copy',
  fn: stridedCopyKernel,
  params: {
    x: 'array',
    prev: 'array',
    usePrev: 'int',
    cs: 'int',
    ce: 'int',
    base: 'int',
    d1: 'int',
    d2: 'int',
    d3: 'int',
    s0: 'int',
    s1: 'int',
    s2: 'int',
    s3: 'int',
  },
  rank: 1,
  functions: INDEX_HELPERS,
};

/**
 * Copies the elements of `chunks` at base + Σ i_d·strides[d] over `dims` (row-major) into a
 * new array: the engine of slice and transpose.
 */
export async function stridedCopy(
  backend: GpujsBackend,
  fn: string,
  chunks: readonly Pick<Chunk, 'start' | 'length' | 'words'>[],
  base: number,
  dims: Shape,
  strides: readonly number[],
): Promise<DeviceArray> {
  const size = sizeOf(dims);
  const levels = collapseBroadcast(dims, [strides]);
  if (levels.dims.length > 4) {
    throw new BackendError({ fn, expected: 'a layout that collapses to at most 4 index levels on the gpu.js backends', got: `${levels.dims.length} levels for ${formatShape(dims)}` });
  }
  while (levels.dims.length < 4) {
    levels.dims.unshift(1);
    levels.strides[0]?.unshift(0);
  }
  const d = levels.dims;
  const s = levels.strides[0] ?? [];
  checkQuotients(fn, 'layout dimensions', d[0] ?? 1, d[1] ?? 1, d[2] ?? 1);
  const common = { base, d1: d[1] ?? 1, d2: d[2] ?? 1, d3: d[3] ?? 1, s0: s[0] ?? 0, s1: s[1] ?? 0, s2: s[2] ?? 0, s3: s[3] ?? 0 };
  let prev: DeviceArray | null = null;
  for (const chunk of chunks) {
    const next: DeviceArray = await backend.run(
      STRIDED_COPY,
      { x: chunk.words, prev: prev ?? backend.dummy, usePrev: prev ? 1 : 0, cs: chunk.start, ce: chunk.start + chunk.length, ...common },
      [size],
    );
    if (prev) backend.device.free(prev);
    prev = next;
  }
  if (!prev) throw new Error(`${fn}: no source chunk`);
  return prev;
}

export async function sliceTensor(backend: GpujsBackend, x: Tensor, begin: readonly number[], size: readonly number[]): Promise<Tensor> {
  const fn = 'slice';
  const s = backend.storageOf(x, fn);
  if (sizeOf(size) === 0) return backend.zeroSized(size, x.dtype, x.blockSize);
  const strides = stridesOf(x.shape);
  const base = begin.reduce((acc, b, d) => acc + b * (strides[d] as number), 0);
  if (s.format === 'value') {
    const out = await stridedCopy(backend, fn, s.chunks, base, size, strides);
    return valueTensor(backend, out, size, x.dtype);
  }
  return sliceQuantized(backend, s, x.shape, begin, size);
}

export async function transposeTensor(backend: GpujsBackend, x: Tensor, perm: readonly number[]): Promise<Tensor> {
  const fn = 'transpose';
  const s = backend.storageOf(x, fn);
  const shape = perm.map((p) => x.shape[p] as number);
  if (x.size === 0) return backend.zeroSized(shape, x.dtype);
  const strides = stridesOf(x.shape);
  const out = await stridedCopy(
    backend,
    fn,
    s.chunks,
    0,
    shape,
    perm.map((p) => strides[p] as number),
  );
  return valueTensor(backend, out, shape, x.dtype);
}

function valueTensor(backend: GpujsBackend, words: DeviceArray, shape: Shape, dtype: Tensor['dtype']): Tensor {
  if (dtype === 'int8' || dtype === 'fp8e4m3') throw new Error('valueTensor of quantised storage');
  return backend.wrap(words, shape, dtype);
}

// Byte e of byte-pair words (0..255), as a number.
function unpackKernel(this: Gpu, words: Arr): number {
  return (words[this.thread.x >> 1] >> ((this.thread.x & 1) * 8)) & 255;
}

const UNPACK: KernelSpec = { key: 'unpack-bytes', fn: unpackKernel, params: { words: 'array' }, rank: 1 };

// Word w of byte values: bytes[2w] + 256·bytes[2w+1] (the second byte 0 past the end).
function packKernel(this: Gpu, bytes: Arr, n: number): number {
  if (2 * this.thread.x + 1 >= n) return bytes[2 * this.thread.x];
  return bytes[2 * this.thread.x] + 256 * bytes[2 * this.thread.x + 1];
}

const PACK: KernelSpec = { key: 'pack-bytes', fn: packKernel, params: { bytes: 'array', n: 'int' }, rank: 1 };

/** Unpacks each chunk's byte pairs to one byte value per element (for exact re-layouts). */
export async function unpackChunks(backend: GpujsBackend, s: Storage): Promise<Pick<Chunk, 'start' | 'length' | 'words'>[]> {
  const out: Pick<Chunk, 'start' | 'length' | 'words'>[] = [];
  for (const c of s.chunks) out.push({ start: c.start, length: c.length, words: await backend.run(UNPACK, { words: c.words }, [c.length]) });
  return out;
}

/** Packs byte values (one per element) into byte-pair words. */
export function packBytes(backend: GpujsBackend, bytes: DeviceArray, n: number): Promise<DeviceArray> {
  return backend.run(PACK, { bytes, n }, [wordsOf('bytepair', n)], 'u16');
}

async function sliceQuantized(backend: GpujsBackend, s: Storage, shape: Shape, begin: readonly number[], size: readonly number[]): Promise<Tensor> {
  const fn = 'slice';
  const bs = s.blockSize ?? 1;
  const last = shape.length - 1;
  const strides = stridesOf(shape);
  const base = begin.reduce((acc, b, d) => acc + b * (strides[d] as number), 0);
  const unpacked = await unpackChunks(backend, s);
  let bytes: DeviceArray;
  try {
    bytes = await stridedCopy(backend, fn, unpacked, base, size, strides);
  } finally {
    for (const u of unpacked) backend.device.free(u.words);
  }
  const n = sizeOf(size);
  let words: DeviceArray;
  try {
    words = await packBytes(backend, bytes, n);
  } finally {
    backend.device.free(bytes);
  }
  // Scales slice like a tensor whose last axis counts blocks (slices keep whole blocks).
  const scaleShape = [...shape.slice(0, -1), (shape[last] as number) / bs];
  const scaleStrides = stridesOf(scaleShape);
  const scaleBegin = [...begin.slice(0, -1), (begin[last] as number) / bs];
  const scaleSize = [...size.slice(0, -1), (size[last] as number) / bs];
  const scaleChunks = s.chunks.map((c) => ({ start: c.start / bs, length: c.length / bs, words: c.scales ?? backend.dummy }));
  const scales = await stridedCopy(
    backend,
    fn,
    scaleChunks,
    scaleBegin.reduce((acc, b, d) => acc + b * (scaleStrides[d] as number), 0),
    scaleSize,
    scaleStrides,
  );
  return backend.adoptStorage({ dtype: s.dtype, format: 'bytepair', size: n, blockSize: bs, chunks: [{ start: 0, length: n, words, scales }], refs: 1 }, size);
}

// Concatenation of up to four inputs along an axis: out [outer, A, inner] with A = n0+…+n3;
// element e = (o·A + a)·inner + i reads input k where a falls into k's range.
function concatKernel(
  this: Gpu,
  x0: Arr,
  x1: Arr,
  x2: Arr,
  x3: Arr,
  n0: number,
  n1: number,
  n2: number,
  n3: number,
  inner: number,
): number {
  // a: the coordinate on the concatenation axis; o: the outer index
  const a = idiv(this.thread.x, inner) - idiv(idiv(this.thread.x, inner), n0 + n1 + n2 + n3) * (n0 + n1 + n2 + n3);
  const i = this.thread.x - idiv(this.thread.x, inner) * inner;
  if (a < n0) return x0[(idiv(idiv(this.thread.x, inner), n0 + n1 + n2 + n3) * n0 + (a | 0)) * inner + (i | 0)];
  if (a < n0 + n1) return x1[(idiv(idiv(this.thread.x, inner), n0 + n1 + n2 + n3) * n1 + (a | 0) - n0) * inner + (i | 0)];
  if (a < n0 + n1 + n2) return x2[(idiv(idiv(this.thread.x, inner), n0 + n1 + n2 + n3) * n2 + (a | 0) - n0 - n1) * inner + (i | 0)];
  return x3[(idiv(idiv(this.thread.x, inner), n0 + n1 + n2 + n3) * n3 + (a | 0) - n0 - n1 - n2) * inner + (i | 0)];
}

const CONCAT: KernelSpec = {
  key: 'concat',
  fn: concatKernel,
  params: { x0: 'array', x1: 'array', x2: 'array', x3: 'array', n0: 'int', n1: 'int', n2: 'int', n3: 'int', inner: 'int' },
  rank: 1,
  functions: INDEX_HELPERS,
};

export async function concatTensor(backend: GpujsBackend, xs: readonly Tensor[], axis: number): Promise<Tensor> {
  const fn = 'concat';
  const first = xs[0];
  if (!first) throw new Error('concat of no tensors (rejected by the op)');
  const shape = [...first.shape];
  shape[axis] = xs.reduce((acc, t) => acc + (t.shape[axis] as number), 0);
  const inner = sizeOf(first.shape.slice(axis + 1));
  const outer = sizeOf(first.shape.slice(0, axis));
  const parts = xs.map((t) => ({ words: backend.arrayOf(t, fn), n: t.shape[axis] as number })).filter((p) => p.n * inner * outer > 0);
  if (sizeOf(shape) === 0) return backend.zeroSized(shape, first.dtype);
  checkQuotients(fn, 'rows', outer * shape[axis]);
  const dtype = first.dtype === 'i32' ? 'i32' : 'f32';
  // Fold four inputs per pass; a pass's output becomes the first input of the next.
  let acc: { words: DeviceArray; n: number } | null = null;
  let at = 0;
  while (at < parts.length || !acc) {
    const group: { words: DeviceArray; n: number }[] = acc ? [acc, ...parts.slice(at, at + 3)] : parts.slice(at, at + 4);
    at += acc ? 3 : 4;
    const pad = (k: number): { words: DeviceArray; n: number } => group[k] ?? { words: backend.dummy, n: 0 };
    const words: DeviceArray = await backend.run(
      CONCAT,
      { x0: pad(0).words, x1: pad(1).words, x2: pad(2).words, x3: pad(3).words, n0: pad(0).n, n1: pad(1).n, n2: pad(2).n, n3: pad(3).n, inner },
      [outer * group.reduce((sum, p) => sum + p.n, 0) * inner],
    );
    if (acc) backend.device.free(acc.words);
    acc = { words, n: group.reduce((sum, p) => sum + p.n, 0) };
    if (at >= parts.length) break;
  }
  return backend.wrap(acc.words, shape, dtype);
}
