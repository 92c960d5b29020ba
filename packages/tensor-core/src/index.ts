export {
  AbortedError,
  AttnkitError,
  BackendError,
  CapacityError,
  ConfigError,
  DTypeError,
  FormatError,
  ShapeError,
  formatShape,
  throwIfAborted,
  type AttnkitErrorDetails,
  type AttnkitErrorKind,
} from './errors.js';
export {
  DTYPES,
  FP8_E4M3_MAX,
  bf16BitsToF32,
  bytesPerElement,
  decodeBf16,
  decodeF16,
  dequantizeBlocks,
  encodeBf16,
  encodeF16,
  f16BitsToF32,
  f32ToBf16Bits,
  f32ToF16Bits,
  f32ToFp8E4m3,
  fp8E4m3ToF32,
  isFloat,
  isQuantized,
  quantizeBlocks,
  storageBytes,
  type DType,
  type FloatDType,
  type QuantizeOptions,
  type QuantizedBlocks,
  type QuantizedDType,
} from './dtype.js';
export { type Shape, broadcastShapes, sameShape, sizeOf, stridesOf } from './shape.js';
export { Tensor } from './tensor.js';
export type { Backend, BackendFamily, BackendInfo, DataId, DeviceKind, HostData, MemoryReport } from './backend.js';
export {
  KERNEL_NAMES,
  type BinaryOp,
  type KernelAttrs,
  type KernelContracts,
  type KernelFunc,
  type KernelInputs,
  type KernelName,
  type KernelOutput,
  type KernelTable,
  type ReduceOp,
  type RopeLayout,
  type UnaryOp,
} from './kernels.js';
export { CpuBackend, isCpuBackend, type CpuBackendOptions } from './cpu/backend.js';
export * as wasm from './cpu/wasm/index.js';
export { type CpuStorage, decodeRange, FP8_E4M3_VALUES } from './cpu/storage.js';
export { BACKEND_PREFERENCE, createBackend, type BackendName, type BackendSelection, type CreateBackendOptions } from './create-backend.js';
export { AbortCheckpoint } from './abort-checkpoint.js';
export { type Arr, type Gpu, type GpujsKernelHost, type GpujsKernelLike, type GpujsKernelSpecLike, type GpujsParamKind, type WebGpuHost, decodeHeadTile, fixedSubgroupSize, isGpujsKernelHost, isWebGpuHost } from './kernel-host.js';
export { WebGpuScratch, webGpuScratch } from './webgpu-scratch.js';
export { ropeInvFreq, yarnSoftmaxScale, type RopeConfig, type YarnConfig } from './rope-frequencies.js';
export * from './ops/index.js';
export * as reference from './reference/index.js';
