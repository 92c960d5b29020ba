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
  return (q | 0) + (a - (q | 0) * b >= b ? 1 : 0) - (a - (q | 0) * b < 0 ? 1 : 0);
}
const k = gpu.createKernel(function (n, b) {
  const e = this.thread.x * 1000003 + n;
  return idiv(this.thread.x * 1000003 + n, b) - Math.floor(e / b) * 0;
}, { output: [4], asyncMode: true, argumentTypes: { n: 'Integer', b: 'Integer' }, functions: [idiv] });
try {
  const r = await k(123457, 7);
  console.log(mode, Array.from(r), [0,1,2,3].map(i => Math.floor((i*1000003+123457)/7)));
  if (mode === 'webgpu') console.log(k.kernel.compiledSource.split('fn main')[0].split('\n').filter(l => l.includes('idiv') || l.includes('user_q') || l.includes('return')).join('\n'));
} catch (e) { console.log(mode, 'ERR', e.message.slice(0, 3000)); }
gpu.destroy();
