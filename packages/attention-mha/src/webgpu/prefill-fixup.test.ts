// The WGSL prefill's fix-up pass (issue 13): the hot pass weighs a hidden key 0, which is exact
// unless that key's value is NaN or ±∞, so it flags the query tiles that loaded such a value and
// the fix-up pass recomputes exactly those with the masked P·V loop. Each case checks the result
// against the float64 reference (NaN where the reference is NaN, ±∞/NaN where it is ±∞, within
// the case tolerance elsewhere), the 'masked' strategy's result, and which tiles were flagged.
import { tensor } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { SeededRandom, abortAtRead, compareArrays, describeOnBackend } from '@attnkit/testkit';
import { expect, it } from 'vitest';
import { attentionReference } from '../reference.js';
import { attentionWithKernel } from '../testing/with-kernel.js';
import type { AttentionOptions } from '../types.js';
import { validateAttention } from '../validate.js';
import { type PrefillFixupReport, createWebgpuFlashKernel } from './webgpu-flash.js';

const { available } = await availableBackends();

interface Case {
  readonly name: string;
  readonly B: number;
  readonly S: number;
  /** Keys (default S); bottom-right causal: query i sits at position length − S + i. */
  readonly T?: number;
  readonly D: number;
  readonly Dv: number;
  /** V is the first Dv channels of each key row (MLA's latent): the value goes into k. */
  readonly valuesFromKeys?: boolean;
  readonly options?: AttentionOptions;
  /** Non-finite values put into V (or K): batch, key, kv head, channel, value. */
  readonly poison: readonly { readonly b: number; readonly key: number; readonly head: number; readonly channel: number; readonly value: number }[];
  /** The flags the fix-up must see, given the queries per tile: [b, query head, tile] → 0 | 1 where asserted. */
  readonly flags: (queriesPerTile: number) => { readonly set: readonly (readonly [number, number, number])[]; readonly exact: boolean };
}

const HQ = 4;
const HKV = 2; // query heads 0 and 1 read kv head 0
const tileOf = (query: number, perTile: number): number => Math.floor(query / perTile);

// A tile holds 32, 64 or 128 queries (32 row groups × 1, 2 or 4 rows), so an odd key sits inside
// a tile, hidden from the tile's earlier rows under the causal mask.
const CASES: Case[] = [
  {
    name: 'causal, ragged lengths: NaN in values hidden from some queries, and past a length',
    B: 2,
    S: 40,
    T: 70,
    D: 16,
    Dv: 16,
    options: { kvLengths: [70, 45] },
    poison: [
      { b: 0, key: 37, head: 0, channel: 3, value: Number.NaN }, // queries sit at 30 + i: hidden from 0–6
      { b: 1, key: 44, head: 1, channel: 0, value: Number.NaN }, // queries sit at 5 + i: hidden from 0–38
      { b: 1, key: 50, head: 0, channel: 1, value: Number.NaN }, // past the length 45: never read
    ],
    flags: (n) => ({ set: [...[0, 1].map((h) => [0, h, tileOf(7, n)] as const), ...[2, 3].map((h) => [1, h, tileOf(39, n)] as const)], exact: true }),
  },
  {
    name: 'causal: +∞ and −∞ in the values of keys 37 and 45',
    B: 1,
    S: 70,
    D: 16,
    Dv: 16,
    poison: [
      { b: 0, key: 37, head: 1, channel: 5, value: Number.POSITIVE_INFINITY },
      { b: 0, key: 45, head: 1, channel: 6, value: Number.NEGATIVE_INFINITY },
    ],
    flags: (n) => ({ set: [2, 3].flatMap((h) => [...new Set([tileOf(37, n), tileOf(45, n)])].map((t) => [0, h, t] as const)), exact: true }),
  },
  {
    name: 'causal, several query tiles (chunked: one tile per chunk): NaN in the value of key 201',
    B: 1,
    S: 300,
    D: 16,
    Dv: 16,
    poison: [{ b: 0, key: 201, head: 1, channel: 7, value: Number.NaN }],
    flags: (n) => ({ set: [2, 3].map((h) => [0, h, tileOf(201, n)] as const), exact: true }),
  },
  {
    name: 'causal: NaN in the value of key 0, which every query sees (propagates, no fix-up)',
    B: 1,
    S: 70,
    D: 16,
    Dv: 16,
    poison: [{ b: 0, key: 0, head: 0, channel: 2, value: Number.NaN }],
    flags: () => ({ set: [], exact: true }),
  },
  {
    name: 'window 8 with 2 sinks: NaN in sink key 1 (hidden from query 0 only)',
    B: 1,
    S: 80,
    D: 16,
    Dv: 16,
    options: { window: 8, sinkTokens: 2 },
    poison: [{ b: 0, key: 1, head: 0, channel: 1, value: Number.NaN }],
    flags: () => ({ set: [0, 1].map((h) => [0, h, 0] as const), exact: true }),
  },
  {
    name: 'window 8 with 2 sinks: NaN in the value of key 51 (hidden before 51 and from 59 on)',
    B: 1,
    S: 80,
    D: 16,
    Dv: 16,
    options: { window: 8, sinkTokens: 2 },
    poison: [{ b: 0, key: 51, head: 0, channel: 1, value: Number.NaN }],
    // Later tiles flag it too where they load its key tile (the window's edge crosses it).
    flags: (n) => ({ set: [0, 1].map((h) => [0, h, tileOf(51, n)] as const), exact: false }),
  },
  {
    name: "values from the keys (MLA): NaN in key 37's value channels (its score is NaN too)",
    B: 1,
    S: 70,
    D: 32,
    Dv: 16,
    valuesFromKeys: true,
    poison: [{ b: 0, key: 37, head: 1, channel: 4, value: Number.NaN }],
    flags: (n) => ({ set: [2, 3].map((h) => [0, h, tileOf(37, n)] as const), exact: true }),
  },
];

/** got matches the float64 reference: NaN where it is NaN, non-finite where it is ±∞, else within tol. */
function expectLikeReference(got: Float32Array, ref: Float32Array, what: string): void {
  const tol = { atol: 2e-5, rtol: 1e-4 };
  const nonFinite = (a: ArrayLike<number>): number[] => Array.from(a, (x, i) => (Number.isNaN(x) ? i : -1)).filter((i) => i >= 0);
  expect(nonFinite(got), `${what}: NaN positions`).toEqual(nonFinite(ref));
  const infinite = Array.from(ref, (x, i) => (Number.isFinite(x) || Number.isNaN(x) ? -1 : i)).filter((i) => i >= 0);
  for (const i of infinite) expect(Number.isFinite(got[i]), `${what}: [${i}] is ±∞ in the reference`).toBe(false);
  const finiteOnly = (a: ArrayLike<number>): Float64Array => Float64Array.from(a, (x) => (Number.isFinite(x) ? x : 0));
  const cmp = compareArrays(finiteOnly(got), finiteOnly(ref), tol);
  expect(cmp.pass, `${what}: ${cmp.message}`).toBe(true);
}

describeOnBackend(available, 'gpujs-webgpu', 'webgpu-flash prefill: the fix-up pass runs exactly where a hidden key holds a non-finite value', (getBackend) => {

  for (const c of CASES) {
    it(c.name, async () => {
      const backend = getBackend();
      const rng = new SeededRandom(4242);
      const T = c.T ?? c.S;
      const qv = rng.normalArray(c.B * c.S * HQ * c.D);
      const kv = rng.normalArray(c.B * T * HKV * c.D);
      const vv = c.valuesFromKeys ? null : rng.normalArray(c.B * T * HKV * c.Dv);
      for (const p of c.poison) {
        const [target, width] = vv ? [vv, c.Dv] : [kv, c.D];
        target[((p.b * T + p.key) * HKV + p.head) * width + p.channel] = p.value;
      }
      using q = tensor(backend, qv, [c.B, c.S, HQ, c.D]);
      using k = tensor(backend, kv, [c.B, T, HKV, c.D]);
      using v = vv ? tensor(backend, vv, [c.B, T, HKV, c.Dv]) : null;
      const baseline = backend.memory().liveTensors;
      const options: AttentionOptions = { ...c.options, returnLse: true, ...(c.valuesFromKeys ? { valueDim: c.Dv } : {}) };
      const g = validateAttention('test', q, k, v, options);
      const ref = attentionReference(
        { q: qv, B: c.B, S: c.S, Hq: HQ },
        { k: kv, v: vv, Hkv: HKV, D: c.D, Dv: c.Dv, T, rowMap: null, lengths: g.lengths },
        { scale: g.scale, causal: g.causal, window: g.window, sinkTokens: g.sinkTokens, bias: null },
      );

      const reports: PrefillFixupReport[] = [];
      const fixup = createWebgpuFlashKernel({ onFixup: (report) => reports.push(report) });
      const masked = createWebgpuFlashKernel({ prefillNonFinite: 'masked', onFixup: (report) => reports.push(report) });
      // Whole, and in chunks of query tiles (a signal): the fix-up follows each chunk's tiles.
      for (const [label, kernel, extra] of [
        ['fixup', fixup, {}],
        ['fixup, chunked', fixup, { signal: abortAtRead(Number.POSITIVE_INFINITY).signal }],
        ['masked', masked, {}],
      ] as const) {
        const { out, lse } = await attentionWithKernel(kernel, q, k, v, { ...options, ...extra });
        expectLikeReference(await out.data(), ref.out, `${label} out`);
        expectLikeReference(await (lse ?? out).data(), ref.lse, `${label} lse`);
        out.dispose();
        lse?.dispose();
      }
      expect(reports.length, "one report per 'fixup' run, none from 'masked'").toBe(2);
      for (const { flags, queriesPerTile } of reports) {
        const tiles = Math.ceil(c.S / queriesPerTile);
        expect(flags.shape).toEqual([c.B, HQ, tiles]);
        const got = Array.from(await flags.data());
        flags.dispose();
        const { set, exact } = c.flags(queriesPerTile);
        const want = new Array<number>(c.B * HQ * tiles).fill(0);
        for (const [b, h, t] of set) want[(b * HQ + h) * tiles + t] = 1;
        if (exact) expect(got, `flags [B, Hq, tiles] with ${queriesPerTile} queries per tile`).toEqual(want);
        else for (const [i, w] of want.entries()) if (w === 1) expect(got[i], `flag ${i}`).toBe(1);
      }
      expect(backend.memory().liveTensors, 'outputs and flags released').toBe(baseline);
    });
  }
}, { checkLeaks: true });
