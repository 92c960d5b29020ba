// The gpu.js backend's kernel table: each contract of src/kernels.ts, implemented by the
// kernel modules of this folder.

import type { KernelTable } from '../../kernels.js';
import type { GpujsBackend } from '../backend.js';
import { castTensor } from './cast.js';
import { binaryTensor, mapTensor } from './elementwise.js';
import { gatherTensor } from './gather.js';
import { concatTensor, sliceTensor, transposeTensor } from './layout.js';
import { linearTensor, matmulTensor } from './matmul.js';
import { normTensor } from './normalization.js';
import { reduceTensor } from './reduce.js';
import { ropeTensor } from './rope.js';
import { logSumExpTensor, softmaxTensor } from './softmax.js';
import { topKTensor } from './topk.js';
import { scatterRowsTensor, writeSliceTensor } from './writes.js';

export function gpujsKernels(backend: GpujsBackend): KernelTable {
  return {
    MatMul: ({ a, b }, { transposeA, transposeB }) => matmulTensor(backend, a, b, transposeA, transposeB),
    Linear: ({ x, weight, bias }) => linearTensor(backend, x, weight, bias),
    Unary: ({ x }, { op }) => mapTensor(backend, x, op),
    Binary: ({ a, b }, { op }) => binaryTensor(backend, a, b, op),
    Affine: ({ x }, { scale, shift }) => mapTensor(backend, x, 'affine', scale, shift),
    Softmax: ({ x, mask }, { scale }) => softmaxTensor(backend, x, mask, scale),
    LogSumExp: ({ x, mask }, { scale }) => logSumExpTensor(backend, x, mask, scale),
    RMSNorm: ({ x, weight }, { eps }) => normTensor(backend, 'rms', x, weight, null, eps),
    LayerNorm: ({ x, weight, bias }, { eps }) => normTensor(backend, 'layer', x, weight, bias, eps),
    RoPE: ({ x, positions, invFreq }, { layout, offset, width }) => ropeTensor(backend, x, positions, invFreq, layout, offset, width),
    Gather: ({ x, indices }, { batchDims }) => gatherTensor(backend, x, indices, batchDims),
    WriteSlice: ({ dst, src }, { axis, start }) => writeSliceTensor(backend, dst, src, axis, start),
    ScatterRows: ({ dst, src, indices }) => scatterRowsTensor(backend, dst, src, indices),
    TopK: ({ x }, { k }) => topKTensor(backend, x, k),
    Concat: ({ xs }, { axis }) => concatTensor(backend, xs, axis),
    Slice: ({ x }, { begin, size }) => sliceTensor(backend, x, begin, size),
    Transpose: ({ x }, { perm }) => transposeTensor(backend, x, perm),
    Reduce: ({ x }, { op, axis, keepDims }) => reduceTensor(backend, x, op, axis, keepDims),
    Cast: ({ x }, { dtype, blockSize, scaleFormat }) => castTensor(backend, x, dtype, blockSize, scaleFormat),
  };
}
