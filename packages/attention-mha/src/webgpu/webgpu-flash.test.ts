// The WGSL fused kernel against the float64 reference, on the gpujs-webgpu backend (lavapipe in
// CI): causal prefill, chunks, decode, windows with sinks, GQA/MQA, ragged lengths, V read from
// the keys (MLA's latent), empty rows; a prefill with a signal stops between its chunks.
import { tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { SeededRandom, abortAtRead, abortEverywhere, compareArrays, describeOnBackend } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { attention } from '../attention.js';
import { planAttention } from '../plan.js';
import { attentionReference } from '../reference.js';
import type { AttentionOptions } from '../types.js';
import { validateAttention } from '../validate.js';
import { webgpuFlashKernel } from './webgpu-flash.js';

const { available } = await availableBackends();

interface Case {
  readonly B: number;
  readonly S: number;
  readonly T: number;
  readonly Hq: number;
  readonly Hkv: number;
  readonly D: number;
  readonly Dv: number;
  readonly options?: AttentionOptions;
  readonly lengths?: number[];
  readonly valuesFromKeys?: boolean;
}

const CASES: Case[] = [
  { B: 1, S: 37, T: 37, Hq: 4, Hkv: 4, D: 16, Dv: 16 },
  { B: 2, S: 70, T: 70, Hq: 8, Hkv: 2, D: 32, Dv: 32 },
  { B: 1, S: 100, T: 100, Hq: 8, Hkv: 2, D: 24, Dv: 16 },
  { B: 2, S: 5, T: 40, Hq: 4, Hkv: 1, D: 64, Dv: 64, lengths: [40, 23] },
  { B: 1, S: 1, T: 300, Hq: 2, Hkv: 2, D: 64, Dv: 64 },
  { B: 2, S: 1, T: 130, Hq: 8, Hkv: 1, D: 128, Dv: 128, lengths: [130, 77] },
  { B: 1, S: 9, T: 13, Hq: 2, Hkv: 2, D: 16, Dv: 16, options: { mask: 'none' } },
  { B: 1, S: 50, T: 50, Hq: 4, Hkv: 2, D: 32, Dv: 32, options: { window: 8, sinkTokens: 2 } },
  { B: 1, S: 1, T: 90, Hq: 4, Hkv: 2, D: 32, Dv: 32, options: { window: 16, sinkTokens: 3 } },
  { B: 1, S: 20, T: 20, Hq: 4, Hkv: 1, D: 40, Dv: 32, valuesFromKeys: true },
  { B: 1, S: 1, T: 64, Hq: 4, Hkv: 1, D: 160, Dv: 128, valuesFromKeys: true },
  // Decode rows that are not a whole number of subgroup-wide vec4s (a partial last vec4 per lane).
  { B: 2, S: 1, T: 200, Hq: 16, Hkv: 1, D: 48, Dv: 20, lengths: [200, 31] },
  { B: 1, S: 1, T: 70, Hq: 4, Hkv: 1, D: 80, Dv: 64, valuesFromKeys: true },
  // decode in head tiles (decodeHeadTile): 6 heads per kv head (tiles of 2), 3 (tiles of 1), 32 (MLA's absorbed shape, wide rows: tiles of 1)
  { B: 2, S: 1, T: 150, Hq: 12, Hkv: 2, D: 32, Dv: 24, lengths: [150, 9] },
  { B: 1, S: 1, T: 80, Hq: 3, Hkv: 1, D: 16, Dv: 16, options: { window: 20, sinkTokens: 1 } },
  { B: 1, S: 1, T: 300, Hq: 32, Hkv: 1, D: 72, Dv: 64, valuesFromKeys: true },
  // Bounds-based visibility with a window, sinks and ragged lengths in prefill.
  { B: 2, S: 33, T: 60, Hq: 4, Hkv: 2, D: 16, Dv: 16, lengths: [60, 41], options: { window: 5, sinkTokens: 1 } },
  // A prefill with one lane per query row (vec4 counts 2 and 1 share no factor 2; every shape takes
  // it on a device without subgroups). Small on purpose: lavapipe's compile time of this variant
  // grows steeply with the head dims (8/4: 12 s cold, 12/8: 44 s, 20/12: ~200 s).
  { B: 2, S: 45, T: 45, Hq: 2, Hkv: 1, D: 8, Dv: 4 },
];

describeOnBackend(available, 'gpujs-webgpu', 'webgpu-flash (WGSL fused attention)', (getBackend) => {

  for (const [n, c] of CASES.entries()) {
    it(`case ${n}: B${c.B} S${c.S} T${c.T} Hq${c.Hq}/Hkv${c.Hkv} D${c.D}/${c.Dv} ${JSON.stringify(c.options ?? {})}${c.valuesFromKeys ? ' V⊂K' : ''}`, async () => {
      const backend = getBackend();
      const rng = new SeededRandom(1000 + n);
      const qv = rng.normalArray(c.B * c.S * c.Hq * c.D);
      const kv = rng.normalArray(c.B * c.T * c.Hkv * c.D);
      const vv = c.valuesFromKeys ? null : rng.normalArray(c.B * c.T * c.Hkv * c.Dv);
      using q = tensor(backend, qv, [c.B, c.S, c.Hq, c.D]);
      using k = tensor(backend, kv, [c.B, c.T, c.Hkv, c.D]);
      using v = vv ? tensor(backend, vv, [c.B, c.T, c.Hkv, c.Dv]) : null;
      const options: AttentionOptions = { ...c.options, returnLse: true, ...(c.lengths ? { kvLengths: c.lengths } : {}), ...(c.valuesFromKeys ? { valueDim: c.Dv } : {}) };
      const g = validateAttention('test', q, k, v, options);
      const inputs = { q, k, v, bias: null, rowMap: null, selection: null };
      const problem = await planAttention('test', inputs, options, g, { kind: 'dense' });
      const support = webgpuFlashKernel.supports(backend, inputs, problem);
      expect(support).toEqual({ ok: true });
      const { out, lse } = await webgpuFlashKernel.run(backend, inputs, problem);
      const ref = attentionReference(
        { q: qv, B: c.B, S: c.S, Hq: c.Hq },
        { k: kv, v: vv, Hkv: c.Hkv, D: c.D, Dv: c.Dv, T: c.T, rowMap: null, lengths: g.lengths },
        { scale: g.scale, causal: g.causal, window: g.window, sinkTokens: g.sinkTokens, bias: null },
      );
      const tol = { atol: 2e-5, rtol: 1e-4 };
      expect(compareArrays(await out.data(), ref.out, tol).message).toMatch(/^max abs err/);
      expect(compareArrays(await out.data(), ref.out, tol).pass).toBe(true);
      expect(compareArrays(await (lse ?? out).data(), ref.lse, tol).pass).toBe(true);
      out.dispose();
      lse?.dispose();
    });
  }

  it('a long prefill with a signal stops between its query-tile chunks and releases what it allocated', async () => {
    const backend = getBackend();
    const rng = new SeededRandom(77);
    const S = 2048;
    using q = tensor(backend, rng.normalArray(S * 2 * 8), [1, S, 2, 8]);
    using k = tensor(backend, rng.normalArray(S * 2 * 8), [1, S, 2, 8]);
    // the chunked result is the single dispatch's, and the fused WGSL kernel is what ran
    const whole = await attention(q, k, k);
    const counted = abortAtRead(Number.POSITIVE_INFINITY);
    const chunked = await attention(q, k, k, { signal: counted.signal });
    expect(chunked.dispatch.implementation).toBe('fused:webgpu-flash');
    expect(Array.from(await chunked.out.data())).toEqual(Array.from(await whole.out.data()));
    whole.out.dispose();
    chunked.out.dispose();
    // a one-tile prefill reads the signal only before it submits: the long one once per chunk more
    const short = abortAtRead(Number.POSITIVE_INFINITY);
    using q2 = tensor(backend, rng.normalArray(2 * 2 * 8), [1, 2, 2, 8]);
    (await attention(q2, k, k, { signal: short.signal, kvLengths: [2] })).out.dispose();
    expect(counted.reads() - short.reads(), 'checkpoints between the chunks').toBeGreaterThanOrEqual(8);
    // stopped at every one of them: AbortedError, nothing left allocated
    const midway = await abortEverywhere(backend, counted.reads(), async (signal) => {
      (await attention(q, k, k, { signal })).out.dispose();
    });
    expect(midway).toBeGreaterThanOrEqual(8);
  });

  it('declines what it does not implement, with the reason', async () => {
    const backend = getBackend();
    using q = tensor(backend, new Float32Array(2 * 6), [1, 1, 2, 6]);
    using k = tensor(backend, new Float32Array(3 * 2 * 6), [1, 3, 2, 6]);
    const g = validateAttention('test', q, k, k, {});
    const inputs = { q, k, v: k, bias: null, rowMap: null, selection: null };
    const problem = await planAttention('test', inputs, {}, g, { kind: 'dense' });
    expect(webgpuFlashKernel.supports(backend, inputs, problem)).toEqual({ ok: false, reason: 'head dims 6/6 are not multiples of 4' });
  });
}, { checkLeaks: true });
