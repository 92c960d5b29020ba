// Pure reference implementations on typed arrays (the oracles, and the CPU backend's kernels).
export { gemm, gemmABt, linearRows } from './matmul.js';
export { layerNormRows, rmsNormRows } from './normalization.js';
export { logSumExpRows, softmaxRows } from './softmax.js';
export { ropeApply } from './rope.js';
export { binaryApply, binaryFn, erf, unaryApply, unaryFn } from './elementwise.js';
export { topKRows } from './topk.js';
export { concatApply, sliceApply, transposeApply } from './layout.js';
export { reduceApply } from './reduce.js';
