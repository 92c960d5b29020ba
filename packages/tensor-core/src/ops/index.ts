export { arange, tensor, zeros, type TensorOptions } from './creation.js';
export { linear, matmul, type MatMulOptions } from './linalg.js';
export {
  abs,
  add,
  affine,
  div,
  exp,
  gelu,
  geluTanh,
  maximum,
  minimum,
  mul,
  neg,
  relu,
  rsqrt,
  sigmoid,
  silu,
  sqrt,
  square,
  sub,
  tanh,
} from './elementwise.js';
export { logSumExp, softmax, type SoftmaxOptions } from './softmax.js';
export { layerNorm, rmsNorm } from './normalization.js';
export { rope, type RopeOptions } from './rope.js';
export { gather, scatterRows, topK, validateIndices, writeSlice } from './indexing.js';
export { concat, reshape, slice, transpose } from './layout.js';
export { max, mean, min, sum } from './reduce.js';
export { cast, dequantize, quantize, type CastOptions } from './cast.js';
