import { createBackend, tensor } from '../src/index.js';
import { isGpujsBackend } from '../src/gpujs/index.js';
const name = process.argv[2] as 'gpujs-cpu';
const { backend } = await createBackend({ prefer: name });
if (!isGpujsBackend(backend)) throw new Error('not gpujs');
function scaleRows(this: { thread: { x: number; y: number } }, x: any, s: any, n: number, alpha: number): number {
  return x[this.thread.y * n + this.thread.x] * s[this.thread.y] * alpha;
}
const k = backend.kernel('test/scale-rows', scaleRows, { params: { x: 'tensor', s: 'tensor', n: 'int', alpha: 'float' }, rank: 2 });
const x = tensor(backend, [1, 2, 3, 4, 5, 6], [2, 3]);
const s = tensor(backend, [10, 100], [2]);
const y = await k.run({ x, s, n: 3, alpha: 0.5 }, { grid: [3, 2], shape: [2, 3] });
console.log(name, await y.data(), backend.compiledKernelCount, [...backend.kernelFallbacks()]);
if (backend.webgpu) console.log('gpu buffer size', backend.webgpu.buffer(y).size);
await backend.dispose();
