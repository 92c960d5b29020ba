// The WebAssembly SIMD attention kernel against the float64 reference on seeded random dense
// problems of the shapes it accepts (f32 K/V, head dims multiples of 4): causal or not, windows
// with sinks, per-sequence lengths, paged row maps, values read from the keys, GQA, tiles and
// row blocks cut mid-way, decode-sized problems that stream K/V through several chunks, and the
// sparse forms (key lists, key blocks). What it declines goes to cpu-flash with the reason in
// the dispatch report.
import { CpuBackend, tensor } from '@attnkit/tensor-core';
import { SeededRandom, abortAtRead, abortEverywhere, compareArrays } from '@attnkit/testkit';
import { describe, expect, it } from 'vitest';
import { attention, blockSparseAttention, sparseAttention } from '../attention.js';
import { type RandomProblem, randomProblem } from '../testing/random-problem.js';
import type { AttentionResult } from '../types.js';

// the same tolerance as the core's conformance suite: f32 arithmetic lands near 1e-6
const TOLERANCE = { atol: 2e-5, rtol: 2e-4 };

// package.json runs these tests with --experimental-wasm-relaxed-simd (Node 20), so both the
// relaxed-SIMD FMA tile and the mul + add tile are checked
describe.each([
  { fma: true, label: 'relaxed-SIMD FMA' },
  { fma: false, label: 'mul + add' },
])('cpu-wasm-flash ($label)', ({ fma }) => {
  const backend = new CpuBackend({ fma });

  it('uses the tile it was asked for', () => {
    expect(backend.wasm?.relaxedSimd).toBe(fma);
  });

  it('matches the float64 reference on random problems it accepts', async () => {
    const rng = new SeededRandom(1201);
    let ran = 0;
    for (let c = 0; c < 80; c++) {
      const D = rng.pick([4, 8, 12, 32, 64]);
      const p = await randomProblem(backend, rng, { selection: 'dense', force: { kvDType: 'f32', D, Dv: rng.pick([D, 4, 16, 20]) } });
      try {
        const result = await attention(p.q, p.k, p.v, { ...p.options, implementation: 'fused' });
        if (result.dispatch.implementation === 'fused:cpu-wasm-flash') ran++;
        else expect(result.dispatch.declined, p.description).toMatch(/^cpu-wasm-flash: (no additive bias|head dims)/);
        const cmp = compareArrays(await result.out.data(), p.expected.out, TOLERANCE);
        expect(cmp.pass, `case ${c}: ${p.description} out: ${cmp.message}`).toBe(true);
        const cmpLse = compareArrays(result.lse ? await result.lse.data() : new Float32Array(0), p.expected.lse, TOLERANCE);
        expect(cmpLse.pass, `case ${c}: ${p.description} lse: ${cmpLse.message}`).toBe(true);
        result.out.dispose();
        result.lse?.dispose();
      } finally {
        p.dispose();
      }
    }
    expect(ran).toBeGreaterThan(40);
    expect(backend.wasm?.liveBytes()).toBe(0);
  });

  // the score dot products are unrolled up to D = 256 (one fenced step per 16 bytes) and a loop past it
  it('matches the float64 reference with the unrolled score steps and with the loop past D = 256', async () => {
    const rng = new SeededRandom(1206);
    for (const D of [128, 256, 260]) {
      let ran = 0;
      for (let c = 0; c < 6; c++) {
        const p = await randomProblem(backend, rng, { selection: 'dense', force: { kvDType: 'f32', D, Dv: rng.pick([D, 4, 20]) } });
        try {
          const result = await attention(p.q, p.k, p.v, { ...p.options, implementation: 'fused' });
          if (result.dispatch.implementation === 'fused:cpu-wasm-flash') ran++;
          else expect(result.dispatch.declined, p.description).toMatch(/^cpu-wasm-flash: (no additive bias|head dims)/);
          const cmp = compareArrays(await result.out.data(), p.expected.out, TOLERANCE);
          expect(cmp.pass, `D ${D} case ${c}: ${p.description} out: ${cmp.message}`).toBe(true);
          result.out.dispose();
          result.lse?.dispose();
        } finally {
          p.dispose();
        }
      }
      expect(ran, `D ${D}: problems the kernel ran`).toBeGreaterThan(1);
    }
    expect(backend.wasm?.liveBytes()).toBe(0);
  });

  for (const kind of ['indices', 'blocks'] as const) {
    it(`matches the float64 reference on random sparse problems (${kind})`, async () => {
      const rng = new SeededRandom(kind === 'indices' ? 1204 : 1205);
      let ran = 0;
      const run = (p: RandomProblem): Promise<AttentionResult> => {
        const options = { ...p.options, implementation: 'fused' as const };
        if (!p.selection) throw new Error('a sparse problem without a selection');
        return kind === 'indices' ? sparseAttention(p.q, p.k, p.v, p.selection, options) : blockSparseAttention(p.q, p.k, p.v, p.selection, { ...options, blockSize: p.blockSize });
      };
      for (let c = 0; c < 40; c++) {
        const D = rng.pick([4, 8, 16, 64]);
        const p = await randomProblem(backend, rng, { selection: kind, force: { kvDType: 'f32', D, Dv: rng.pick([D, 4, 12]) } });
        try {
          const result = await run(p);
          if (result.dispatch.implementation === 'fused:cpu-wasm-flash') ran++;
          else expect(result.dispatch.declined, p.description).toMatch(/^cpu-wasm-flash: (no additive bias|head dims)/);
          const cmp = compareArrays(await result.out.data(), p.expected.out, TOLERANCE);
          expect(cmp.pass, `case ${c}: ${p.description} out: ${cmp.message}`).toBe(true);
          const cmpLse = compareArrays(result.lse ? await result.lse.data() : new Float32Array(0), p.expected.lse, TOLERANCE);
          expect(cmpLse.pass, `case ${c}: ${p.description} lse: ${cmpLse.message}`).toBe(true);
          result.out.dispose();
          result.lse?.dispose();
        } finally {
          p.dispose();
        }
      }
      expect(ran).toBeGreaterThan(20);
      expect(backend.wasm?.liveBytes()).toBe(0);
    });
  }

  // a list of ≥ 32 Mi multiply-adds (DSA's 2048 picks × 128 heads) goes over the threads in pieces
  it('splits long sparse lists over the threads (key lists and key blocks)', async () => {
    const rng = new SeededRandom(1207);
    for (const [kind, force] of [
      // ~2200 distinct keys × 64 heads × 384: ~55 Mi multiply-adds
      ['indices', { B: 1, S: 1, T: 3000, Hq: 64, Hkv: 1, D: 256, Dv: 128, kvDType: 'f32' as const, width: 4096 }],
      // ~1600 × 64 × 384 per (query, kv head): ~40 Mi
      ['indices', { B: 2, S: 2, T: 2600, Hq: 128, Hkv: 2, D: 256, Dv: 128, kvDType: 'f32' as const, width: 2600 }],
      ['blocks', { B: 1, S: 2, T: 4000, Hq: 64, Hkv: 1, D: 256, Dv: 256, kvDType: 'f32' as const, width: 60 }],
    ] as const) {
      let ran = false;
      // redraw the problems the kernel declines (an additive bias, values read from the keys at a width not a multiple of 4)
      for (let attempt = 0; attempt < 10 && !ran; attempt++) {
        const p = await randomProblem(backend, rng, { selection: kind, force });
        try {
          if (!p.selection) throw new Error('a sparse problem without a selection');
          const options = { ...p.options, implementation: 'fused' as const };
          const result = kind === 'indices' ? await sparseAttention(p.q, p.k, p.v, p.selection, options) : await blockSparseAttention(p.q, p.k, p.v, p.selection, { ...options, blockSize: p.blockSize });
          ran = result.dispatch.implementation === 'fused:cpu-wasm-flash';
          const cmp = compareArrays(await result.out.data(), p.expected.out, TOLERANCE);
          expect(cmp.pass, `${p.description}: ${cmp.message}`).toBe(true);
          const cmpLse = compareArrays(result.lse ? await result.lse.data() : new Float32Array(0), p.expected.lse, TOLERANCE);
          expect(cmpLse.pass, `${p.description} lse: ${cmpLse.message}`).toBe(true);
          result.out.dispose();
          result.lse?.dispose();
        } finally {
          p.dispose();
        }
      }
      expect(ran, `${kind}: the kernel ran one of the problems`).toBe(true);
    }
    expect(backend.wasm?.liveBytes()).toBe(0);
  });

  it('decodes long K/V read in place from the heap, and streamed in chunks from JavaScript arrays', async () => {
    const rng = new SeededRandom(1202);
    for (const force of [
      { B: 1, S: 1, T: 700, Hq: 8, Hkv: 8, D: 128, Dv: 128, kvDType: 'f32' as const },
      { B: 2, S: 3, T: 333, Hq: 16, Hkv: 4, D: 64, Dv: 64, kvDType: 'f32' as const },
      { B: 1, S: 1, T: 1027, Hq: 32, Hkv: 8, D: 64, Dv: 64, kvDType: 'f32' as const },
    ]) {
      const p = await randomProblem(backend, rng, { selection: 'dense', force });
      // the same K/V as JavaScript arrays (a kernel output's storage): the chunked copy path
      const kJs = backend.wrap(await p.k.data(), p.k.shape);
      const vJs = p.v ? backend.wrap(await p.v.data(), p.v.shape) : null;
      try {
        // f32 tensors of at least 1 MiB that the backend created live in its heap (read in place)
        expect(backend.wasm?.byteOffsetOf(backend.view(p.k)) !== null).toBe(4 * p.k.size >= 2 ** 20);
        expect(backend.wasm?.byteOffsetOf(backend.view(kJs))).toBeNull();
        for (const [k, v] of [
          [p.k, p.v],
          [kJs, vJs],
        ] as const) {
          const result = await attention(p.q, k, v, p.options);
          if (!p.options.bias) expect(result.dispatch.implementation).toBe('fused:cpu-wasm-flash');
          const cmp = compareArrays(await result.out.data(), p.expected.out, TOLERANCE);
          expect(cmp.pass, `${p.description}: ${cmp.message}`).toBe(true);
          result.out.dispose();
          result.lse?.dispose();
        }
      } finally {
        kJs.dispose();
        vJs?.dispose();
        p.dispose();
      }
    }
    expect(backend.wasm?.liveBytes()).toBe(0);
  });

  // one queue per chunk on every thread: staging and K/V packing, then the tiles, then the finish
  it('prefills operands of ≥ 1 MiB read in place from the heap into a resident output, on every thread', async () => {
    const rng = new SeededRandom(1206);
    const cases = [
      { B: 1, S: 512, T: 512, Hq: 8, Hkv: 8, D: 64, options: { mask: 'causal' as const } },
      { B: 2, S: 256, T: 512, Hq: 16, Hkv: 4, D: 64, options: { mask: 'causal' as const, window: 100, sinkTokens: 3, kvLengths: [512, 400] } },
      // d = 128 takes the K-tile score step too (K_TILES_MAX_D)
      { B: 1, S: 512, T: 512, Hq: 4, Hkv: 4, D: 128, options: { mask: 'causal' as const } },
      // a batch entry no row sees a key of: its queue runs the staging and the finish (zeros) alone
      { B: 3, S: 256, T: 512, Hq: 8, Hkv: 2, D: 128, options: { mask: 'none' as const, kvLengths: [0, 300, 512] } },
    ];
    for (const { B, S, T, Hq, Hkv, D, options } of cases) {
      const q = tensor(backend, rng.normalArray(B * S * Hq * D), [B, S, Hq, D]);
      const k = tensor(backend, rng.normalArray(B * T * Hkv * D), [B, T, Hkv, D]);
      const v = tensor(backend, rng.normalArray(B * T * Hkv * D), [B, T, Hkv, D]);
      try {
        for (const t of [q, k, v]) expect(backend.wasm?.byteOffsetOf(backend.view(t))).not.toBeNull();
        const got = await attention(q, k, v, { ...options, returnLse: true });
        const want = await attention(q, k, v, { ...options, returnLse: true, implementation: 'reference' });
        expect(got.dispatch.implementation).toBe('fused:cpu-wasm-flash');
        expect(backend.wasm?.byteOffsetOf(backend.view(got.out))).not.toBeNull();
        const label = `B${B} S${S} T${T} Hq${Hq} Hkv${Hkv} ${JSON.stringify(options)}`;
        const cmp = compareArrays(await got.out.data(), await want.out.data(), TOLERANCE);
        expect(cmp.pass, `${label}: ${cmp.message}`).toBe(true);
        const cmpLse = compareArrays(got.lse ? await got.lse.data() : new Float32Array(0), want.lse ? await want.lse.data() : new Float32Array(1), TOLERANCE);
        expect(cmpLse.pass, `${label} lse: ${cmpLse.message}`).toBe(true);
        for (const t of [got.out, got.lse, want.out, want.lse]) t?.dispose();
      } finally {
        for (const t of [q, k, v]) t.dispose();
      }
    }
    expect(backend.wasm?.liveBytes()).toBe(0);
  });

  // a prefill of several queue rounds, stopped at each checkpoint: the workers finish the jobs they
  // took (and those waited for) and leave, the heap is released, and the next call runs in full
  it('stops a prefill on every thread at each abort checkpoint, then runs the next one', async () => {
    const rng = new SeededRandom(1207);
    const [S, H, D] = [1024, 8, 64];
    using q = tensor(backend, rng.normalArray(S * H * D), [1, S, H, D]);
    using k = tensor(backend, rng.normalArray(S * H * D), [1, S, H, D]);
    using v = tensor(backend, rng.normalArray(S * H * D), [1, S, H, D]);
    const full = abortAtRead(1e9);
    const want = await attention(q, k, v, { mask: 'causal', signal: full.signal });
    expect(want.dispatch.implementation).toBe('fused:cpu-wasm-flash');
    expect(full.reads(), 'rounds with a checkpoint between').toBeGreaterThan(2);
    const midway = await abortEverywhere(backend, full.reads(), async (signal) => {
      const r = await attention(q, k, v, { mask: 'causal', signal });
      r.out.dispose();
    });
    expect(midway).toBeGreaterThan(0);
    expect(backend.wasm?.liveBytes()).toBe(4 * S * H * (3 * D + D)); // q, k, v and want.out
    const again = await attention(q, k, v, { mask: 'causal' });
    const [got, expected] = [await again.out.data(), await want.out.data()];
    expect(got.every((x, i) => x === expected[i]), 'bit-identical to the call before the aborts').toBe(true);
    for (const t of [want.out, again.out]) t.dispose();
  });

  it('declines with a reason: no SIMD, quantised K/V', async () => {
    const plain = new CpuBackend({ simd: false });
    const rng = new SeededRandom(1203);
    const p = await randomProblem(plain, rng, { selection: 'dense', force: { kvDType: 'f32', D: 8, Dv: 8 } });
    const r = await attention(p.q, p.k, p.v, p.options);
    expect(r.dispatch.implementation).toBe('fused:cpu-flash');
    expect(r.dispatch.declined).toMatch(/cpu-wasm-flash: no WebAssembly SIMD: SIMD kernels switched off/);
    r.out.dispose();
    r.lse?.dispose();
    p.dispose();
    const q8 = await randomProblem(backend, rng, { selection: 'dense', force: { kvDType: 'int8', D: 8, Dv: 8 } });
    const r8 = await attention(q8.q, q8.k, q8.v, q8.options);
    expect(r8.dispatch.declined).toMatch(/cpu-wasm-flash: reads f32 K\/V only \(k int8/);
    r8.out.dispose();
    r8.lse?.dispose();
    q8.dispose();
  });
});
