import { GPU } from 'gpu.js';
const mode = process.argv[2];
if (mode === 'webgpu') {
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals);
  globalThis.navigator = { gpu: create([]) };
}
const gpu = new GPU({ mode });
function idiv(a, b) {
  const q = Math.floor((a + 0.5) / b);
  return (q | 0) + ((a - (q | 0) * b) >> 31) - ((b - 1 - (a - (q | 0) * b)) >> 31);
}
function strided2(e, d1, s0, s1) {
  return idiv(e, d1) * s0 + (e - idiv(e, d1) * d1) * s1;
}
function strided3(e, d1, d2, s0, s1, s2) {
  return idiv(e, d1 * d2) * s0 + strided2(e - idiv(e, d1 * d2) * d1 * d2, d2, s1, s2);
}
const k = gpu.createKernel(function (x, n, b, d1, d2, s0, s1, s2) {
  return strided3(this.thread.x, d1, d2, s0, s1, s2) + x[strided3(this.thread.x, d1, d2, s0, s1, s2)] * 0 + idiv(n, b) * 0;
}, { output: [24], asyncMode: true, argumentTypes: { x: 'Array', n: 'Integer', b: 'Integer', d1: 'Integer', d2: 'Integer', s0: 'Integer', s1: 'Integer', s2: 'Integer' }, functions: [idiv, strided2, strided3] });
try {
  // transpose [2,3,4] -> perm (2,0,1): out shape [4,2,3], strides in = [12,4,1] -> out strides picks [1,12,4]
  const r = await k(new Float32Array(24), 123457, 7, 2, 3, 1, 12, 4);
  console.log(mode, Array.from(r).map(v => v.toFixed(3)).join(' '));
  let exp = []; for (let i = 0; i < 24; i++) { const a = Math.floor(i/6), b = Math.floor((i%6)/3), c = i%3; exp.push((a*1+b*12+c*4).toFixed(3)); } console.log('expect', exp.join(' '));
} catch (e) { console.log(mode, 'ERR', e.message.slice(0, 3000)); }
gpu.destroy();
