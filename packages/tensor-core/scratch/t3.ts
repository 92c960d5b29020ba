import * as tc from '../src/index.js';
import { CpuBackend, type Backend, type Tensor } from '../src/index.js';
const name = process.argv[2] as 'gpujs-cpu';
const only = process.argv[3];
const { backend } = await tc.createBackend({ prefer: name });
const cpu = new CpuBackend();
let seed = 1;
const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647) * 2 - 1;
const arr = (n: number) => Float32Array.from({ length: n }, rnd);
type Op = (b: Backend, h: (v: ArrayLike<number>, s: number[], o?: tc.TensorOptions) => Tensor) => Promise<Tensor | { values: Tensor; indices: Tensor }>;
const cases: Record<string, Op> = {};
const A = arr(2 * 3 * 5), Bm = arr(5 * 4), W = arr(7 * 5);
cases.matmul = (b, h) => tc.matmul(h(A, [2, 3, 5]), h(Bm, [5, 4]));
cases.matmulT = (b, h) => tc.matmul(h(A, [2, 3, 5]), h(W, [7, 5]), { transposeB: true });
cases.linear = (b, h) => tc.linear(h(A, [2, 3, 5]), h(W, [7, 5]), h(arr(7), [7]));
cases.softmax = (b, h) => tc.softmax(h(A, [2, 3, 5]), { scale: 0.7, mask: h([0, -Infinity, 0, 0, -Infinity, 0, 0, 0, 0, 0, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity], [3, 5]) });
cases.lse = (b, h) => tc.logSumExp(h(A, [2, 3, 5]), { scale: 0.7, mask: h([0, -Infinity, 0, 0, -Infinity, 0, 0, 0, 0, 0, -Infinity, -Infinity, -Infinity, -Infinity, -Infinity], [3, 5]) });
cases.rms = (b, h) => tc.rmsNorm(h(A, [2, 3, 5]), h(arr(5), [5]));
cases.layer = (b, h) => tc.layerNorm(h(A, [2, 3, 5]), h(arr(5), [5]), h(arr(5), [5]));
cases.rope = (b, h) => tc.rope(h(arr(2 * 3 * 2 * 8), [2, 3, 2, 8]), h(Int32Array.from([5, 6, 9]), [3], { dtype: 'i32' }), h(tc.ropeInvFreq({ dim: 6 }), [3]), { layout: 'halfsplit', offset: 2 });
cases.ropeI = (b, h) => tc.rope(h(arr(2 * 3 * 2 * 8), [2, 3, 2, 8]), h(Int32Array.from([5, 6, 9, 1, 2, 3]), [2, 3], { dtype: 'i32' }), h(tc.ropeInvFreq({ dim: 8 }), [4]), { layout: 'interleaved' });
cases.gather = (b, h) => tc.gather(h(A, [2, 3, 5]), h(Int32Array.from([2, 0, 1, 1]), [2, 2], { dtype: 'i32' }), { batchDims: 1 });
cases.topk = (b, h) => tc.topK(h([3, 1, 3, 2, NaN, 5, 5, 0, -1, 7, 1, 1], [2, 6]), 4);
cases.concat = (b, h) => tc.concat([h(A, [2, 3, 5]), h(arr(2 * 2 * 5), [2, 2, 5]), h(arr(2 * 1 * 5), [2, 1, 5])], 1);
cases.slice = (b, h) => tc.slice(h(A, [2, 3, 5]), [1, 1, 2], [1, 2, 3]);
cases.transpose = (b, h) => tc.transpose(h(A, [2, 3, 5]), [2, 0, 1]);
cases.sum = (b, h) => tc.sum(h(A, [2, 3, 5]), 1);
cases.max = (b, h) => tc.max(h(A, [2, 3, 5]), 2, true);
cases.castf16 = (b, h) => tc.cast(h(Float32Array.from(A, (v) => v * 1000), [2, 3, 5]), 'f16');
cases.castbf16 = (b, h) => tc.cast(h(Float32Array.from(A, (v) => v * 1000), [2, 3, 5]), 'bf16');
cases.castint8 = (b, h) => tc.cast(h(A, [2, 3, 5]), 'int8', { blockSize: 5 });
cases.castfp8 = (b, h) => tc.cast(h(A, [2, 3, 5]), 'fp8e4m3', { blockSize: 5 });
cases.linearQ = async (b, h) => tc.linear(h(A, [2, 3, 5]), await tc.cast(h(W, [7, 5]), 'fp8e4m3', { blockSize: 5 }));
cases.gatherQ = async (b, h) => tc.gather(await tc.cast(h(A, [6, 5]), 'int8', { blockSize: 5 }), h(Int32Array.from([2, 0, 5]), [3], { dtype: 'i32' }));
cases.writeSlice = async (b, h) => { const d = tc.zeros(b, [2, 4, 5], 'f16'); await tc.writeSlice(d, h(A, [2, 3, 5]), 1, 1); return d; };
cases.writeSliceQ = async (b, h) => { const d = tc.zeros(b, [2, 4, 5], 'int8', 5); await tc.writeSlice(d, h(A, [2, 3, 5]), 1, 1); return d; };
cases.scatter = async (b, h) => { const d = tc.zeros(b, [6, 5], 'fp8e4m3', 5); await tc.scatterRows(d, h(A.subarray(0, 15), [3, 5]), h(Int32Array.from([4, 1, 2]), [3], { dtype: 'i32' })); return d; };
cases.sliceQ = async (b, h) => tc.slice(await tc.cast(h(A, [6, 5]), 'int8', { blockSize: 5 }), [1, 0], [3, 5]);
cases.silu = (b, h) => tc.gelu(h(A, [30]));
cases.bcast4 = (b, h) => tc.mul(h(arr(2 * 1 * 3 * 1), [2, 1, 3, 1]), h(arr(4 * 1 * 5), [4, 1, 5]));
for (const [n, op] of Object.entries(cases)) {
  if (only && n !== only) continue;
  try {
    const t0 = performance.now();
    const run = async (b: Backend) => {
      seed = 7;
      const r = await op(b, (v, s, o) => tc.tensor(b, v, s, o));
      if ('values' in r) return [...(await r.values.data()), ...(await r.indices.data())];
      return [...(await r.data())];
    };
    const [x, y] = [await run(cpu), await run(backend)];
    let err = 0;
    for (let i = 0; i < x.length; i++) { const d = Math.abs(x[i]! - y[i]!); if (!(d <= err) && !(Object.is(x[i], y[i]) || x[i] === y[i] || (isNaN(x[i]!) && isNaN(y[i]!)))) err = Math.max(err, isNaN(d) ? Infinity : d); }
    console.log(n.padEnd(12), x.length === y.length ? 'len ok' : `LEN ${x.length} vs ${y.length}`, 'maxerr', err.toExponential(2), (performance.now() - t0).toFixed(0) + 'ms');
    if (err > 1e-4) console.log('  cpu', x.slice(0, 12).map(v => v.toFixed(4)).join(' '), '\n  gpu', y.slice(0, 12).map(v => v.toFixed(4)).join(' '));
  } catch (e) { console.log(n, 'ERROR', (e as Error).message.slice(0, 600)); }
}
console.log([...((backend as any).kernelFallbacks?.() ?? [])]);
await backend.dispose();
