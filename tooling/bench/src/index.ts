export { type MeasureOptions, type Measurement, gflops, measure } from './runner.js';
export { BenchRun, type BenchRecord, type BenchRunOptions } from './report.js';
export { type Peer, type PeerOp, onnxRuntime, tfjsWasm } from './peers.js';
export { oneNodeModel, type OnnxNode } from './onnx.js';
export { type QueuedOptions, type QueuedTiming, type SubmittedWorkQueue, queuedSteps } from './queued.js';
