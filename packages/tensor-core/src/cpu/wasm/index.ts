// What other packages' fused CPU kernels need to write and run their own WebAssembly SIMD code
// over a CpuBackend's heap (`backend.wasm`): the emitter, the heap, the vector helpers.
export * from './emit.js';
export { type WasmKernelModule, type WasmRegion, type WasmRegionScope, WasmHeap, exported, relaxedSimdSupported, wasmSimdUnsupportedReason } from './heap.js';
export { WasmThreadPool, defaultThreadCount, threadsUnavailableReason } from './threads.js';
export { EXP2_UNDERFLOW, EXP_UNDERFLOW, horizontalMax, horizontalSum, reduce4, vectorExp, vectorExp2 } from './vector.js';
