// The peers every attnkit figure is compared with, measured in the same run on the same data:
// TensorFlow.js on its WebAssembly backend, and ONNX Runtime's CPU execution provider (one-node
// models built in ./onnx.ts). Each returns a closure that runs the operation and waits until
// its result is readable on the host, as attnkit's figures do.
import { createRequire } from 'node:module';
import { cpus } from 'node:os';
import { oneNodeModel } from './onnx.js';

export interface PeerOp {
  /** Runs once; resolves when the output is on the host. */
  run(): Promise<void>;
  dispose(): Promise<void>;
}

export interface Peer {
  readonly implementation: string;
  readonly backend: string;
  readonly version: string;
  matmul(a: Float32Array, b: Float32Array, M: number, K: number, N: number): Promise<PeerOp>;
  /** Softmax over the last axis of x [rows, cols]. */
  softmax(x: Float32Array, rows: number, cols: number): Promise<PeerOp>;
  dispose(): Promise<void>;
}

const require = createRequire(import.meta.url);

function versionOf(pkg: string): string {
  const manifest: unknown = require(`${pkg}/package.json`);
  return typeof manifest === 'object' && manifest !== null && 'version' in manifest && typeof manifest.version === 'string' ? manifest.version : 'unknown';
}

/** @tensorflow/tfjs-core on @tensorflow/tfjs-backend-wasm (SIMD; threads where its build allows). */
export async function tfjsWasm(): Promise<Peer> {
  const tf = await import('@tensorflow/tfjs-core');
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  wasm.setThreadsCount(cpus().length);
  if (!(await tf.setBackend('wasm'))) throw new Error('tfjs: the wasm backend did not initialise');
  await tf.ready();
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
  const op = (make: () => ReturnType<typeof tf.matMul>, inputs: ReturnType<typeof tf.tensor2d>[]): PeerOp => ({
    async run() {
      const out = make();
      await out.data();
      out.dispose();
    },
    dispose() {
      for (const t of inputs) t.dispose();
      return Promise.resolve();
    },
  });
  return {
    implementation: '@tensorflow/tfjs-backend-wasm',
    backend: `wasm${simd === true ? ' simd' : ''}${threads === true ? ` ${wasm.getThreadsCount()} threads` : ' 1 thread'}`,
    version: versionOf('@tensorflow/tfjs-backend-wasm'),
    matmul(a, b, M, K, N) {
      const ta = tf.tensor2d(a, [M, K]);
      const tb = tf.tensor2d(b, [K, N]);
      return Promise.resolve(op(() => tf.matMul(ta, tb), [ta, tb]));
    },
    softmax(x, rows, cols) {
      const tx = tf.tensor2d(x, [rows, cols]);
      return Promise.resolve(op(() => tf.softmax(tx), [tx]));
    },
    dispose() {
      tf.engine().reset();
      return Promise.resolve();
    },
  };
}

/** onnxruntime-node's CPU execution provider, all cores. */
export async function onnxRuntime(): Promise<Peer> {
  const ort = await import('onnxruntime-node');
  const threads = cpus().length;
  type Session = Awaited<ReturnType<typeof ort.InferenceSession.create>>;
  const sessionOf = (bytes: Uint8Array): Promise<Session> =>
    ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: threads, graphOptimizationLevel: 'all' });
  const op = (session: Session, feeds: Record<string, InstanceType<typeof ort.Tensor>>): PeerOp => ({
    async run() {
      const out: Record<string, InstanceType<typeof ort.Tensor>> = await session.run(feeds);
      for (const t of Object.values(out)) {
        if (!(t.data instanceof Float32Array)) throw new Error('onnxruntime returned a non-f32 output');
        t.dispose();
      }
    },
    async dispose() {
      await session.release();
    },
  });
  return {
    implementation: 'onnxruntime-node',
    backend: `cpu ${threads} threads`,
    version: versionOf('onnxruntime-node'),
    async matmul(a, b, M, K, N) {
      const model = oneNodeModel({ opType: 'MatMul', inputs: [{ name: 'A', shape: [M, K] }, { name: 'B', shape: [K, N] }], output: { name: 'Y', shape: [M, N] } });
      return op(await sessionOf(model), { A: new ort.Tensor('float32', a, [M, K]), B: new ort.Tensor('float32', b, [K, N]) });
    },
    async softmax(x, rows, cols) {
      const model = oneNodeModel({ opType: 'Softmax', inputs: [{ name: 'X', shape: [rows, cols] }], output: { name: 'Y', shape: [rows, cols] }, intAttributes: { axis: 1 } });
      return op(await sessionOf(model), { X: new ort.Tensor('float32', x, [rows, cols]) });
    },
    dispose: () => Promise.resolve(),
  };
}
