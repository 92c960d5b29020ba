// The CPU backend's kernel table. Inputs were validated by src/ops; each kernel reads typed
// arrays through the backend, calls the pure reference implementation and wraps the result.

import { quantizeBlocks } from '../dtype.js';
import type { KernelTable } from '../kernels.js';
import { gemm, gemmABt, linearRows } from '../reference/matmul.js';
import { layerNormRows, rmsNormRows } from '../reference/normalization.js';
import { softmaxRows, logSumExpRows } from '../reference/softmax.js';
import { ropeApply } from '../reference/rope.js';
import { binaryApply, unaryApply } from '../reference/elementwise.js';
import { topKRows } from '../reference/topk.js';
import { concatApply, sliceApply, transposeApply } from '../reference/layout.js';
import { reduceApply } from '../reference/reduce.js';
import { broadcastOffset, broadcastShapes, broadcastStrides, sizeOf, stridesOf } from '../shape.js';
import type { Tensor } from '../tensor.js';
import type { CpuBackend } from './backend.js';
import { type CpuStorage, copyRange, decodeAll, decodeRange, encodeRange } from './storage.js';
import { type GemmOperands, wasmGemm } from './wasm/gemm.js';
import { smallGemmDeclines, wasmSmallGemm } from './wasm/gemm-small.js';
import { WASM_SOFTMAX_MIN_ELEMENTS, wasmSoftmax } from './wasm/softmax.js';

/** Below this many multiply-adds a product stays in JavaScript: packing would cost more. */
const WASM_GEMM_MIN_MACS = 32768;

export function cpuKernels(backend: CpuBackend): KernelTable {
  const f32 = (t: Tensor): Float32Array => decodeAll(backend.storageOf(t));
  const ok = <T>(value: T): Promise<T> => Promise.resolve(value);
  /** out = A·B through the SIMD GEMM when the backend has it and the product is large enough. */
  const product = async (p: GemmOperands, out: Float32Array, outOffset: number): Promise<void> => {
    if (backend.wasm && p.M * p.N * p.K >= WASM_GEMM_MIN_MACS) {
      if (smallGemmDeclines(p) === null) await wasmSmallGemm(backend.wasm, backend.wasmThreads, p, out, outOffset);
      else await wasmGemm(backend.wasm, backend.wasmThreads, p, out, outOffset);
    }
    else if (p.transB && !p.transA) gemmABt(p.a, p.aOffset, p.b, p.bOffset, out, outOffset, p.M, p.N, p.K);
    else gemm(p.a, p.aOffset, p.b, p.bOffset, out, outOffset, p.M, p.N, p.K, p.transA, p.transB);
  };

  return {
    async MatMul({ a, b }, { transposeA, transposeB }) {
      const A = backend.view(a);
      const Bm = backend.view(b);
      const M = a.shape[a.rank - (transposeA ? 1 : 2)] as number;
      const K = a.shape[a.rank - (transposeA ? 2 : 1)] as number;
      const N = b.shape[b.rank - (transposeB ? 2 : 1)] as number;
      const batchA = a.shape.slice(0, -2);
      const batchB = b.shape.slice(0, -2);
      const batch = broadcastShapes(batchA, batchB, 'matmul');
      const nBatch = sizeOf(batch);
      // a large result is a resident array: the SIMD GEMM writes C into it in place (every
      // product overwrites its whole block, so it is not zero-filled first)
      const result = backend.output([...batch, M, N]);
      const out = backend.view(result);
      const sa = broadcastStrides(batchA, batch);
      const sb = broadcastStrides(batchB, batch);
      const bstr = stridesOf(batch);
      try {
        for (let i = 0; i < nBatch; i++) {
          const ia = broadcastOffset(i, bstr, sa);
          const ib = broadcastOffset(i, bstr, sb);
          await product({ a: A, aOffset: ia * M * K, b: Bm, bOffset: ib * K * N, M, N, K, transA: transposeA, transB: transposeB }, out, i * M * N);
        }
      } catch (e) {
        result.dispose();
        throw e;
      }
      return result;
    },

    async Linear({ x, weight, bias }) {
      const X = backend.view(x);
      const I = x.shape[x.rank - 1] as number;
      const R = x.size / Math.max(I, 1);
      const O = weight.shape[0] as number;
      const w = backend.storageOf(weight);
      if (w.dtype === 'f32') {
        // f32 weight rows are contiguous: x·Wᵀ (into a resident result in place when large), then the bias
        const result = backend.output([...x.shape.slice(0, -1), O]);
        try {
          const out = backend.view(result);
          await product({ a: X, aOffset: 0, b: w.data, bOffset: 0, M: R, N: O, K: I, transA: false, transB: true }, out, 0);
          if (bias) {
            const bv = backend.view(bias);
            for (let r = 0; r < R; r++) for (let o = 0; o < O; o++) out[r * O + o] = (out[r * O + o] as number) + (bv[o] as number);
          }
        } catch (e) {
          result.dispose();
          throw e;
        }
        return result;
      }
      const out = new Float32Array(R * O);
      // 16-bit and quantised rows are decoded one at a time, never widened as a whole
      const weightRow = (o: number, scratch: Float32Array): Float32Array => {
        decodeRange(w, o * I, I, scratch);
        return scratch;
      };
      linearRows(X, R, I, O, weightRow, bias ? backend.view(bias) : null, out);
      return backend.wrap(out, [...x.shape.slice(0, -1), O]);
    },

    Unary({ x }, { op }) {
      const out = new Float32Array(x.size);
      unaryApply(backend.view(x), op, out);
      return ok(backend.wrap(out, x.shape));
    },

    Binary({ a, b }, { op }) {
      const shape = broadcastShapes(a.shape, b.shape, 'binary');
      const out = new Float32Array(sizeOf(shape));
      binaryApply(backend.view(a), a.shape, backend.view(b), b.shape, shape, op, out);
      return ok(backend.wrap(out, shape));
    },

    Affine({ x }, { scale, shift }) {
      const X = backend.view(x);
      const out = new Float32Array(x.size);
      for (let i = 0; i < out.length; i++) out[i] = (X[i] as number) * scale + shift;
      return ok(backend.wrap(out, x.shape));
    },

    async Softmax({ x, mask }, { scale }) {
      const N = x.shape[x.rank - 1] as number;
      // a large result is a resident array: the SIMD kernel writes its rows there in place (every
      // row, so it is not zero-filled first)
      const result = backend.output(x.shape);
      try {
        const out = backend.view(result);
        const m = maskAddressing(x, mask);
        const maskValues = mask ? backend.view(mask) : null;
        if (backend.wasm && x.size >= WASM_SOFTMAX_MIN_ELEMENTS && (m.stride === 0 || m.stride === 1)) {
          const op = { x: backend.view(x), N, scale, mask: maskValues, maskRowOffset: m.rowOffset, maskStride: m.stride } as const;
          await wasmSoftmax(backend.wasm, backend.wasmThreads, op, out);
        } else softmaxRows(backend.view(x), N, scale, maskValues, m.rowOffset, m.stride, out);
      } catch (e) {
        result.dispose();
        throw e;
      }
      return result;
    },

    LogSumExp({ x, mask }, { scale }) {
      const N = x.shape[x.rank - 1] as number;
      const out = new Float32Array(x.size / Math.max(N, 1));
      const m = maskAddressing(x, mask);
      logSumExpRows(backend.view(x), N, scale, mask ? backend.view(mask) : null, m.rowOffset, m.stride, out);
      return ok(backend.wrap(out, x.shape.slice(0, -1)));
    },

    RMSNorm({ x, weight }, { eps }) {
      const out = new Float32Array(x.size);
      rmsNormRows(backend.view(x), x.shape[x.rank - 1] as number, weight ? f32(weight) : null, eps, out);
      return ok(backend.wrap(out, x.shape));
    },

    LayerNorm({ x, weight, bias }, { eps }) {
      const out = new Float32Array(x.size);
      layerNormRows(backend.view(x), x.shape[x.rank - 1] as number, weight ? f32(weight) : null, bias ? f32(bias) : null, eps, out);
      return ok(backend.wrap(out, x.shape));
    },

    RoPE({ x, positions, invFreq }, { layout, offset, width }) {
      // x is [B, S, H, D] or [S, H, D]
      const D = x.shape[x.rank - 1] as number;
      const H = x.shape[x.rank - 2] as number;
      const S = x.shape[x.rank - 3] as number;
      const B = x.rank === 4 ? (x.shape[0] as number) : 1;
      const pos = backend.viewInt(positions);
      const positionAt = positions.rank === 2 ? (b: number, s: number): number => pos[b * S + s] as number : (_b: number, s: number): number => pos[s] as number;
      const out = new Float32Array(x.size);
      ropeApply(backend.view(x), B, S, H, D, positionAt, backend.view(invFreq), layout, offset, width, out);
      return ok(backend.wrap(out, x.shape));
    },

    Gather({ x, indices }, { batchDims }) {
      const src = backend.storageOf(x);
      const idx = backend.viewInt(indices);
      const batch = sizeOf(x.shape.slice(0, batchDims));
      const N = x.shape[batchDims] as number;
      const row = sizeOf(x.shape.slice(batchDims + 1));
      const perBatch = sizeOf(indices.shape.slice(batchDims));
      const out = new Float32Array(batch * perBatch * row);
      for (let b = 0; b < batch; b++) {
        for (let k = 0; k < perBatch; k++) {
          const i = idx[b * perBatch + k] as number;
          decodeRange(src, (b * N + i) * row, row, out, (b * perBatch + k) * row);
        }
      }
      return ok(backend.wrap(out, [...indices.shape, ...x.shape.slice(batchDims + 1)]));
    },

    WriteSlice({ dst, src }, { axis, start }) {
      const d = backend.storageOf(dst);
      const s = backend.storageOf(src);
      const outer = sizeOf(dst.shape.slice(0, axis));
      const inner = sizeOf(dst.shape.slice(axis + 1));
      const dstAxis = dst.shape[axis] as number;
      const n = src.shape[axis] as number;
      for (let o = 0; o < outer; o++) {
        copyRange(s, o * n * inner, d, (o * dstAxis + start) * inner, n * inner);
      }
      return ok(dst);
    },

    ScatterRows({ dst, src, indices }) {
      const d = backend.storageOf(dst);
      const s = backend.storageOf(src);
      const idx = backend.viewInt(indices);
      const row = sizeOf(dst.shape.slice(1));
      for (let k = 0; k < idx.length; k++) copyRange(s, k * row, d, (idx[k] as number) * row, row);
      return ok(dst);
    },

    TopK({ x }, { k }) {
      const N = x.shape[x.rank - 1] as number;
      const rows = x.size / Math.max(N, 1);
      const values = new Float32Array(rows * k);
      const indices = new Int32Array(rows * k);
      topKRows(backend.view(x), N, k, values, indices);
      const shape = [...x.shape.slice(0, -1), k];
      return ok({ values: backend.wrap(values, shape), indices: backend.adopt({ dtype: 'i32', data: indices }, shape) });
    },

    Concat({ xs }, { axis }) {
      const first = xs[0];
      if (!first) throw new Error('Concat of no tensors (rejected by the op)');
      const shape = [...first.shape];
      shape[axis] = xs.reduce((acc, t) => acc + (t.shape[axis] as number), 0);
      if (first.dtype === 'i32') {
        const out = new Int32Array(sizeOf(shape));
        concatApply(xs.map((t) => ({ data: backend.viewInt(t), shape: t.shape })), axis, out);
        return ok(backend.adopt({ dtype: 'i32', data: out }, shape));
      }
      const out = new Float32Array(sizeOf(shape));
      concatApply(xs.map((t) => ({ data: f32(t), shape: t.shape })), axis, out);
      return ok(backend.wrap(out, shape));
    },

    Slice({ x }, { begin, size }) {
      const s = backend.storageOf(x);
      return ok(backend.adopt(sliceStorage(s, x.shape, begin, size), size));
    },

    Transpose({ x }, { perm }) {
      const shape = perm.map((p) => x.shape[p] as number);
      const s = backend.storageOf(x);
      if (s.dtype === 'i32') {
        const out = new Int32Array(x.size);
        transposeApply(s.data, x.shape, perm, out);
        return ok(backend.adopt({ dtype: 'i32', data: out }, shape));
      }
      if (s.dtype === 'f16' || s.dtype === 'bf16') {
        // 16-bit storage keeps its dtype: a transpose moves values, it does not widen them
        const out = new Uint16Array(x.size);
        transposeApply(s.data, x.shape, perm, out);
        return ok(backend.adopt({ dtype: s.dtype, data: out }, shape));
      }
      const out = new Float32Array(x.size);
      transposeApply(f32(x), x.shape, perm, out);
      return ok(backend.wrap(out, shape));
    },

    Reduce({ x }, { op, axis, keepDims }) {
      const outer = sizeOf(x.shape.slice(0, axis));
      const N = x.shape[axis] as number;
      const inner = sizeOf(x.shape.slice(axis + 1));
      const out = new Float32Array(outer * inner);
      reduceApply(backend.view(x), outer, N, inner, op, out);
      const shape = keepDims ? x.shape.map((d, i) => (i === axis ? 1 : d)) : x.shape.filter((_, i) => i !== axis);
      return ok(backend.wrap(out, shape));
    },

    Cast({ x }, { dtype, blockSize, scaleFormat }) {
      const values = f32(x);
      if (dtype === 'int8') {
        const q = quantizeBlocks(values, dtype, { blockSize, scaleFormat });
        if (!(q.codes instanceof Int8Array)) throw new Error('int8 quantisation produced unsigned codes');
        return ok(backend.adopt({ dtype, data: q.codes, scales: q.scales, blockSize }, x.shape));
      }
      if (dtype === 'fp8e4m3') {
        const q = quantizeBlocks(values, dtype, { blockSize, scaleFormat });
        if (!(q.codes instanceof Uint8Array)) throw new Error('fp8 quantisation produced signed codes');
        return ok(backend.adopt({ dtype, data: q.codes, scales: q.scales, blockSize }, x.shape));
      }
      const target = backend.zeros(x.shape, dtype);
      encodeRange(backend.storageOf(target), 0, values);
      return ok(target);
    },
  };
}

/** How a kernel walks a broadcast additive mask: the offset of each row and the column stride. */
function maskAddressing(x: Tensor, mask: Tensor | null): { rowOffset: (row: number) => number; stride: number } {
  if (!mask) return { rowOffset: () => -1, stride: 0 };
  const rowShape = x.shape.slice(0, -1);
  const strides = broadcastStrides(mask.shape, x.shape);
  const rowStrides = strides.slice(0, -1);
  const rowCoordStrides = stridesOf(rowShape);
  return {
    stride: strides[strides.length - 1] as number,
    rowOffset: (row) => broadcastOffset(row, rowCoordStrides, rowStrides),
  };
}

function sliceStorage(s: CpuStorage, shape: readonly number[], begin: readonly number[], size: readonly number[]): CpuStorage {
  const n = sizeOf(size);
  switch (s.dtype) {
    case 'f32': {
      const out = new Float32Array(n);
      sliceApply(s.data, shape, begin, size, out);
      return { dtype: 'f32', data: out };
    }
    case 'i32': {
      const out = new Int32Array(n);
      sliceApply(s.data, shape, begin, size, out);
      return { dtype: 'i32', data: out };
    }
    case 'f16':
    case 'bf16': {
      const out = new Uint16Array(n);
      sliceApply(s.data, shape, begin, size, out);
      return { dtype: s.dtype, data: out };
    }
    case 'int8':
    case 'fp8e4m3': {
      // Slices of quantised storage keep whole last-axis rows (validated by the op), so the
      // scales slice like a tensor whose last axis is counted in blocks.
      const bs = s.blockSize;
      const scaleShape = [...shape.slice(0, -1), (shape[shape.length - 1] as number) / bs];
      const scaleBegin = [...begin.slice(0, -1), (begin[begin.length - 1] as number) / bs];
      const scaleSize = [...size.slice(0, -1), (size[size.length - 1] as number) / bs];
      const scales = new Float32Array(sizeOf(scaleSize));
      sliceApply(s.scales, scaleShape, scaleBegin, scaleSize, scales);
      if (s.dtype === 'int8') {
        const out = new Int8Array(n);
        sliceApply(s.data, shape, begin, size, out);
        return { dtype: 'int8', data: out, scales, blockSize: bs };
      }
      const out = new Uint8Array(n);
      sliceApply(s.data, shape, begin, size, out);
      return { dtype: 'fp8e4m3', data: out, scales, blockSize: bs };
    }
  }
}
