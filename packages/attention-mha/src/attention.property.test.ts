// Property: on every backend, `attention()` and `sparseAttention()` agree with an independent
// float64 oracle (@attnkit/testkit's attention64) within the float32 error bound of the case, for
// random MHA (G = 1), GQA and MQA (Hkv = 1) problems: causal or not, windows with sinks, ragged
// lengths, f32 / f16 / bf16 / int8 K/V, dense or sparse key lists, fused or composed. Every case
// also releases every tensor it made. A failure prints the seed and path that replay it
// (ATTNKIT_FC_SEED / ATTNKIT_FC_PATH; ATTNKIT_FC_RUNS for more runs).
import { type Backend, type Tensor, cast, tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { assertProperty, attention64, describeEachBackend, firstOutside, SeededRandom } from '@attnkit/testkit';
import fc from 'fast-check';
import { expect, it } from 'vitest';
import { attention, sparseAttention } from './attention.js';

const { available } = await availableBackends();

const problem = fc
  .record({
    B: fc.integer({ min: 1, max: 2 }),
    Hkv: fc.integer({ min: 1, max: 3 }),
    G: fc.integer({ min: 1, max: 3 }),
    D: fc.integer({ min: 1, max: 20 }),
    Dv: fc.integer({ min: 1, max: 20 }),
    T: fc.integer({ min: 1, max: 40 }),
    sPart: fc.double({ min: 0, max: 1, noNaN: true }),
    causal: fc.boolean(),
    window: fc.option(fc.integer({ min: 1, max: 40 }), { nil: null }),
    sinkTokens: fc.integer({ min: 0, max: 3 }),
    ragged: fc.boolean(),
    kvDType: fc.constantFrom('f32', 'f16', 'bf16', 'int8'),
    form: fc.constantFrom('dense', 'sparse'),
    implementation: fc.constantFrom('auto', 'composed'),
    scale: fc.option(fc.double({ min: 0.05, max: 1, noNaN: true }), { nil: null }),
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  })
  .map((p) => {
    const S = Math.max(1, Math.round(p.sPart * (p.causal ? p.T : 24)));
    const window = p.causal && p.form === 'dense' ? p.window : null;
    return { ...p, S, window, sinkTokens: window === null ? 0 : p.sinkTokens };
  });

type Problem = typeof problem extends fc.Arbitrary<infer P> ? P : never;

const variant = (p: Problem): string => (p.G === 1 ? 'MHA' : p.Hkv === 1 ? 'MQA' : 'GQA');

async function agrees(backend: Backend, p: Problem): Promise<void> {
  const { B, S, T, Hkv, D, Dv } = p;
  const Hq = Hkv * p.G;
  const rng = new SeededRandom(p.seed);
  const lengths = Array.from({ length: B }, () => (p.ragged ? rng.int(p.causal ? S : 0, T) : T));
  const before = backend.memory();
  const owned: Tensor[] = [];
  const keep = <X extends Tensor>(t: X): X => {
    owned.push(t);
    return t;
  };
  try {
    const q = keep(tensor(backend, rng.normalArray(B * S * Hq * D), [B, S, Hq, D]));
    const kF = keep(tensor(backend, rng.normalArray(B * T * Hkv * D), [B, T, Hkv, D]));
    const vF = keep(tensor(backend, rng.normalArray(B * T * Hkv * Dv), [B, T, Hkv, Dv]));
    const k = p.kvDType === 'f32' ? kF : keep(await cast(kF, p.kvDType, p.kvDType === 'int8' ? { blockSize: D } : {}));
    const v = p.kvDType === 'f32' ? vF : keep(await cast(vF, p.kvDType, p.kvDType === 'int8' ? { blockSize: Dv } : {}));
    let lists: Int32Array | null = null;
    const width = rng.int(1, 8);
    const perHead = Hkv > 1 && rng.next() < 0.5;
    if (p.form === 'sparse') {
      lists = new Int32Array(B * S * (perHead ? Hkv : 1) * width);
      for (let i = 0; i < lists.length; i++) lists[i] = rng.next() < 0.15 ? -1 : rng.int(0, T - 1);
    }
    const heads = perHead ? Hkv : 1;
    const expected = attention64({
      q: await q.data(),
      k: await k.data(),
      v: await v.data(),
      B,
      S,
      T,
      Hq,
      Hkv,
      D,
      Dv,
      scale: p.scale ?? 1 / Math.sqrt(D),
      causal: p.causal,
      window: p.window,
      sinkTokens: p.sinkTokens,
      lengths,
      ...(lists
        ? {
            keys: (b: number, i: number, g: number) => {
              const at = ((b * S + i) * heads + (perHead ? g : 0)) * width;
              return lists.subarray(at, at + width);
            },
          }
        : {}),
    });
    const common = {
      kvLengths: lengths,
      implementation: p.implementation,
      ...(p.scale !== null ? { scale: p.scale } : {}),
    };
    const result = lists
      ? await sparseAttention(q, k, v, keep(tensor(backend, lists, [B, S, heads, width], { dtype: 'i32' })), { ...common, causal: p.causal })
      : await attention(q, k, v, {
          ...common,
          mask: p.causal ? 'causal' : 'none',
          ...(p.window !== null ? { window: p.window } : {}),
          ...(p.sinkTokens > 0 ? { sinkTokens: p.sinkTokens } : {}),
        });
    keep(result.out);
    const mismatch = firstOutside(await result.out.data(), expected.out, expected.tolerance);
    expect(mismatch, `${variant(p)} ${p.form} on ${backend.info.name} (${result.dispatch.implementation})`).toBeNull();
  } finally {
    for (const t of owned) t.dispose();
  }
  const after = backend.memory();
  expect({ tensors: after.liveTensors, buffers: after.liveBuffers }, 'every tensor released').toEqual({ tensors: before.liveTensors, buffers: before.liveBuffers });
}

describeEachBackend(available, (name) => `attention property on ${name}`, (getBackend, backendName) => {
  it('MHA, GQA and MQA agree with the float64 oracle within the f32 bound of each case', async () => {
    await assertProperty(
      `attention on ${backendName}`,
      fc.asyncProperty(problem, (p) => agrees(getBackend(), p)),
      backendName === 'gpujs-webgpu' ? 25 : 40,
    );
  });
});
