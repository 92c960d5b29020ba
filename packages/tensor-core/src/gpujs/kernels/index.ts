// The gpu.js backend's kernel table: each contract of src/kernels.ts, implemented by the
// kernel modules of this folder.

import { BackendError } from '../../errors.js';
import type { KernelTable } from '../../kernels.js';
import type { GpujsBackend } from '../backend.js';
import { binaryTensor, mapTensor } from './elementwise.js';
import { linearTensor, matmulTensor } from './matmul.js';

export function gpujsKernels(backend: GpujsBackend): KernelTable {
  const todo = (name: string): never => {
    throw new BackendError({ fn: name, expected: 'an implemented kernel', got: `${name} is not implemented on ${backend.info.name} yet` });
  };
  return {
    MatMul: ({ a, b }, { transposeA, transposeB }) => matmulTensor(backend, a, b, transposeA, transposeB),
    Linear: ({ x, weight, bias }) => linearTensor(backend, x, weight, bias),
    Unary: ({ x }, { op }) => mapTensor(backend, x, op),
    Binary: ({ a, b }, { op }) => binaryTensor(backend, a, b, op),
    Affine: ({ x }, { scale, shift }) => mapTensor(backend, x, 'affine', scale, shift),
    Softmax: () => Promise.resolve(todo('Softmax')),
    LogSumExp: () => Promise.resolve(todo('LogSumExp')),
    RMSNorm: () => Promise.resolve(todo('RMSNorm')),
    LayerNorm: () => Promise.resolve(todo('LayerNorm')),
    RoPE: () => Promise.resolve(todo('RoPE')),
    Gather: () => Promise.resolve(todo('Gather')),
    WriteSlice: () => Promise.resolve(todo('WriteSlice')),
    ScatterRows: () => Promise.resolve(todo('ScatterRows')),
    TopK: () => Promise.resolve(todo('TopK')),
    Concat: () => Promise.resolve(todo('Concat')),
    Slice: () => Promise.resolve(todo('Slice')),
    Transpose: () => Promise.resolve(todo('Transpose')),
    Reduce: () => Promise.resolve(todo('Reduce')),
    Cast: () => Promise.resolve(todo('Cast')),
  };
}
