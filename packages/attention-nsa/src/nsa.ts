// Native Sparse Attention over a key/value history (spec §4, paper eq. 5):
//   o = g_cmp·Attn(q, K_cmp, V_cmp) + g_slc·Attn(q, K_slc, V_slc) + g_win·Attn(q, K_win, V_win)
// q [B, S, Hq, D] are the S newest tokens of each sequence (bottom-right: prefill, decode and
// chunked prefill alike); k [B, T, Hkv, D] / v [B, T, Hkv, Dv] hold the whole history.

import { type DispatchReport, attention } from '@attnkit/attention-mha';
import {
  CapacityError,
  ConfigError,
  DTypeError,
  ShapeError,
  cast,
  concat,
  formatShape,
  reshape,
  slice,
  throwIfAborted,
  zeros,
  type Tensor,
} from '@attnkit/tensor-core';
import { compressBlocks } from './compress.js';
import { fusedDecodeStep } from './decode-step.js';
import { permute } from './layout.js';
import { compressedChunk, type HeadMajorOperands } from './compressed.js';
import { type ResolvedNSAConfig, compressedBlockCount, selectionBlockCount } from './config.js';
import { combineBranches, nsaGates } from './gates.js';
import { QueryPositions } from './positions.js';
import { selectBlocks, selectedAttention } from './selection.js';
import type { NSAWeights } from './weights.js';

/** Compressed keys and values kept by a cache ([B, Ncap, Hkv, D] / [B, Ncap, Hkv, Dv], blocks in order). */
export interface CompressedKV {
  readonly keys: Tensor;
  readonly values: Tensor;
}

export interface NSAOptions {
  /** Valid keys per sequence (each ≥ S); default T for all. The queries end each sequence. */
  readonly kvLengths?: readonly number[];
  /** Paged / ring-buffer layouts (see the attention core); needs `compressed` from the cache. */
  readonly rowMap?: Tensor | null;
  /** Compressed blocks maintained by a cache; computed from k and v when absent. */
  readonly compressed?: CompressedKV | null;
  /** Also return every intermediate (k_cmp, v_cmp, block scores, selected blocks, branch outputs, gates). */
  readonly returnStages?: boolean;
  /**
   * Queries per chunk of the compressed branch (its probabilities are materialised per chunk).
   * Default: as many as keep p_cmp under 4 Mi elements.
   */
  readonly queryChunk?: number;
  /**
   * `auto` (default): a decode step (one query per sequence, no row map, no stages) runs fused
   * where its backend has the kernel (`webgpu-nsa-decode`, `cpu-nsa-decode`), else composed.
   * `fused`: the fused step or a ConfigError saying why it declined. `composed`: tensor-core
   * primitives and the attention core, always (the fused steps are tested against it).
   */
  readonly implementation?: 'auto' | 'fused' | 'composed';
  readonly signal?: AbortSignal;
}

/** Every intermediate of one call, token-major; owned by the caller (dispose them, or the object). */
export interface NSAStages extends Disposable {
  /** K_cmp [B, N, Hkv, D], N = ⌊(T − l)/d⌋ + 1 complete blocks of the longest sequence. */
  readonly kCmp: Tensor;
  /** V_cmp [B, N, Hkv, Dv]. */
  readonly vCmp: Tensor;
  /** Block importance [B, S, Hkv, ⌈T/l′⌉] before forcing (0 for blocks after the query's). */
  readonly blockScores: Tensor;
  /** Selected selection blocks, i32 [B, S, Hkv, n], descending score, −1 padded. */
  readonly selectedBlocks: Tensor;
  readonly oCmp: Tensor;
  readonly oSlc: Tensor;
  readonly oWin: Tensor;
  /** `[B, S, Hq, 3]`: (cmp, slc, win) per head. */
  readonly gates: Tensor;
}

export interface NSAResult {
  /** [B, S, Hq, Dv]. */
  readonly out: Tensor;
  /** Present with `returnStages`. */
  readonly stages?: NSAStages;
  /**
   * Which implementation ran the selected and window branches: `fused:webgpu-nsa-decode` or
   * `fused:cpu-nsa-decode` for a fused decode step (all three branches and the gates), else the attention core's
   * report, whose `declined` starts with why the fused step did not apply.
   */
  readonly dispatch: { readonly selected: DispatchReport; readonly window: DispatchReport };
}

const PROBABILITY_BUDGET = 1 << 22;

/**
 * NSA for queries q at the end of the history k, v, with gate input x [B, S, gateDim].
 * `config` must come from `resolveNSAConfig` and `weights` checked by `validateNSAWeights`
 * (the `NativeSparseAttention` layer does both once).
 */
export async function nativeSparseAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  x: Tensor,
  config: ResolvedNSAConfig,
  weights: NSAWeights,
  options: NSAOptions = {},
): Promise<NSAResult> {
  const fn = 'nativeSparseAttention';
  const { B, S, T, lengths } = validateInputs(fn, q, k, v, x, config, options);
  const pos = new QueryPositions(lengths, S);
  const { nHeads: Hq, nKvHeads: Hkv, groupSize: G, headDim: D } = config;
  const layout = { kvLengths: lengths, rowMap: options.rowMap ?? null, signal: options.signal };
  const owned: Tensor[] = [];
  const own = <X extends Tensor>(t: X): X => {
    owned.push(t);
    return t;
  };
  try {
    throwIfAborted(options.signal, fn);
    // 1. compression: N complete blocks of the longest sequence (shorter ones mask the rest)
    const nCmp = compressedBlockCount(pos.maxLength, config);
    const cached = options.compressed ?? null;
    if (cached) {
      checkCompressed(fn, cached.keys, [B, nCmp, Hkv, D], 'keys', T);
      checkCompressed(fn, cached.values, [B, nCmp, Hkv, config.vHeadDim], 'values', T);
    }
    // A decode step runs fused where q's backend has the kernel (WebGPU: one submission, no
    // readback; CPU: one SIMD kernel on the worker threads). It reads a cache's compressed blocks
    // in place: capacity rows past N are never visible.
    let declined: string | undefined;
    let computed: { kCmp: Tensor; vCmp: Tensor } | null = null; // exactly nCmp rows, f32
    const implementation = options.implementation ?? 'auto';
    if (implementation !== 'composed') {
      const notDecode = S !== 1 ? `${S} queries per sequence (a decode step has 1)` : options.returnStages ? 'returnStages asks for every intermediate' : options.rowMap ? 'a row map' : null;
      if (notDecode === null) {
        if (!cached) computed = await compressedOperands(fn, k, v, nCmp, config, weights, null, own);
        const ops = { q, k, v, kCmp: cached?.keys ?? computed?.kCmp ?? k, vCmp: cached?.values ?? computed?.vCmp ?? v, nCmp, x, lengths };
        throwIfAborted(options.signal, fn);
        const step = await fusedDecodeStep(ops, config, weights);
        if (step.ok) {
          const report = { implementation: `fused:${step.kernel}` };
          return { out: step.out, dispatch: { selected: report, window: report } };
        }
        declined = step.reason;
      }
      if (implementation === 'fused') throw new ConfigError({ fn, expected: 'a fused decode step (implementation: fused)', got: declined ?? notDecode ?? '' });
    }
    const { kCmp, vCmp } = computed ?? (await compressedOperands(fn, k, v, nCmp, config, weights, cached, own));

    // 2–4. compressed branch, block importance and top-n, chunk by chunk over the queries
    const headMajor: HeadMajorOperands = {
      q: own(await permute(own(reshape(q, [B, S, Hkv, G, D])), [0, 2, 1, 3, 4])), // [B, Hkv, S, G, D]
      k: own(await permute(kCmp, [0, 2, 1, 3])), // [B, Hkv, N, D]
      v: own(await permute(vCmp, [0, 2, 1, 3])), // [B, Hkv, N, Dv]
    };
    const nSlc = selectionBlockCount(pos.maxLength, config);
    const chunk = options.queryChunk ?? Math.max(1, Math.floor(PROBABILITY_BUDGET / (B * Hq * Math.max(nCmp, 1))));
    const oCmpParts: Tensor[] = [];
    const selectedParts: Tensor[] = [];
    const scoreParts: Tensor[] = [];
    for (let i0 = 0; i0 < S; i0 += chunk) {
      throwIfAborted(options.signal, fn);
      const i1 = Math.min(S, i0 + chunk);
      using part = await compressedChunk(headMajor, pos, i0, i1, config);
      oCmpParts.push(own(reshape(part.out, part.out.shape))); // a handle that outlives the chunk
      selectedParts.push(own(await selectBlocks(part.importance, pos, i0, i1, config)));
      if (options.returnStages) scoreParts.push(own(await tokenMajorScores(part.importance, nSlc)));
    }
    const oCmp = oCmpParts.length === 1 ? (oCmpParts[0] as Tensor) : own(await concat(oCmpParts, 1)); // [B, S, Hq, Dv]
    const selected = selectedParts.length === 1 ? (selectedParts[0] as Tensor) : own(await concat(selectedParts, 1)); // i32 [B, S, Hkv, n]

    // 5–6. selected blocks and the sliding window, on the attention core
    throwIfAborted(options.signal, fn);
    const slc = await selectedAttention(q, k, v, selected, config, layout);
    const oSlc = own(slc.out);
    const win = await attention(q, k, v, { window: config.window, scale: config.scale, ...layout });
    const oWin = own(win.out);

    // 7. gates and the gated sum
    const gates = own(await nsaGates(x, weights.gateWeight, weights.gateBias, Hq)); // [B, S, Hq, 3]
    const out = await combineBranches(gates, oCmp, oSlc, oWin);
    const dispatch = { selected: withDeclined(slc.dispatch, declined), window: withDeclined(win.dispatch, declined) };
    if (!options.returnStages) return { out, dispatch };

    const keep = (t: Tensor): Tensor => reshape(t, t.shape); // a second, caller-owned handle on the same storage
    let blockScores: Tensor;
    try {
      blockScores = scoreParts.length === 1 ? keep(scoreParts[0] as Tensor) : await concat(scoreParts, 1);
    } catch (error) {
      out.dispose();
      throw error;
    }
    const stages = makeStages({
      kCmp: keep(kCmp),
      vCmp: keep(vCmp),
      blockScores,
      selectedBlocks: keep(selected),
      oCmp: keep(oCmp),
      oSlc: keep(oSlc),
      oWin: keep(oWin),
      gates: keep(gates),
    });
    return { out, stages, dispatch };
  } finally {
    for (const t of owned) t.dispose();
  }
}

/** A cache's compressed keys or values: [B, ≥ nCmp, Hkv, dim] (capacity rows past nCmp allowed). */
function checkCompressed(fn: string, t: Tensor, [B, nCmp, Hkv, dim]: readonly [number, number, number, number], name: string, T: number): void {
  t.assertAlive(fn);
  if (t.rank !== 4 || t.shape[0] !== B || t.shape[2] !== Hkv || t.shape[3] !== dim) {
    throw new ShapeError({ fn, expected: `compressed ${name} of shape [${B}, N, ${Hkv}, ${dim}]`, got: formatShape(t.shape) });
  }
  if ((t.shape[1] as number) < nCmp) {
    throw new CapacityError({ fn, expected: `at least ${nCmp} compressed ${name} blocks (complete blocks of ${T} tokens)`, got: String(t.shape[1]) });
  }
}

/** The branch's report, with the reason the fused decode step declined first. */
function withDeclined(report: DispatchReport, declined: string | undefined): DispatchReport {
  if (declined === undefined) return report;
  return { ...report, declined: report.declined ? `${declined}; ${report.declined}` : declined };
}

/**
 * K_cmp, V_cmp [B, N, Hkv, ·] in f32: slices of the cache's blocks (already checked by
 * `checkCompressed`), or compressed here.
 */
async function compressedOperands(
  fn: string,
  k: Tensor,
  v: Tensor,
  nCmp: number,
  config: ResolvedNSAConfig,
  weights: NSAWeights,
  cached: CompressedKV | null,
  own: <X extends Tensor>(t: X) => X,
): Promise<{ kCmp: Tensor; vCmp: Tensor }> {
  const [B] = k.shape as readonly [number];
  const { nKvHeads: Hkv, headDim: D, vHeadDim: Dv } = config;
  if (cached) {
    const fit = async (t: Tensor, dim: number): Promise<Tensor> => {
      // The cache's capacity rows are cut before any f16/bf16/int8/fp8 storage is widened.
      const rows = t.shape[1] === nCmp ? t : own(await slice(t, [0, 0, 0, 0], [B, nCmp, Hkv, dim]));
      return own(rows.dtype === 'f32' ? reshape(rows, rows.shape) : await cast(rows, 'f32'));
    };
    return { kCmp: await fit(cached.keys, D), vCmp: await fit(cached.values, Dv) };
  }
  if (k.rank !== 4) throw new ConfigError({ fn, expected: 'compressed blocks from the cache when keys are a row pool (rowMap)', got: 'none' });
  if (nCmp === 0) return { kCmp: own(zeros(k.backend, [B, 0, Hkv, D])), vCmp: own(zeros(k.backend, [B, 0, Hkv, Dv])) };
  // Compress only the tokens of complete blocks; longer buffers (cache capacity, a partial last block) are cut first.
  const tokens = (nCmp - 1) * config.cmpStride + config.cmpBlock;
  const run = async (t: Tensor): Promise<Tensor> => (t.shape[1] === tokens ? t : own(await slice(t, [0, 0, 0, 0], [B, tokens, Hkv, t.shape[3] as number])));
  const kCmp = own(await compressBlocks(await run(k), { kind: config.phi, pe: weights.keyPE ?? null, mlp: weights.keyMLP ?? null }, config));
  const vCmp = own(await compressBlocks(await run(v), { kind: config.phi, pe: weights.valuePE ?? null, mlp: weights.valueMLP ?? null }, config));
  return { kCmp, vCmp };
}

/** Importance [B, Hkv, Sc, Ns] → [B, Sc, Hkv, nSlc], zero for the blocks after the chunk's last query. */
async function tokenMajorScores(importance: Tensor, nSlc: number): Promise<Tensor> {
  using t = await permute(importance, [0, 2, 1, 3]);
  const [B, Sc, Hkv, ns] = t.shape as readonly [number, number, number, number];
  if (ns === nSlc) return reshape(t, t.shape);
  using pad = zeros(t.backend, [B, Sc, Hkv, nSlc - ns]);
  return await concat([t, pad], 3);
}

function makeStages(t: Omit<NSAStages, typeof Symbol.dispose>): NSAStages {
  return {
    ...t,
    [Symbol.dispose]() {
      for (const x of [t.kCmp, t.vCmp, t.blockScores, t.selectedBlocks, t.oCmp, t.oSlc, t.oWin, t.gates]) x.dispose();
    },
  };
}

function validateInputs(
  fn: string,
  q: Tensor,
  k: Tensor,
  v: Tensor,
  x: Tensor,
  config: ResolvedNSAConfig,
  options: NSAOptions,
): { B: number; S: number; T: number; lengths: readonly number[] } {
  k.assertAlive(fn);
  v.assertAlive(fn);
  const { B, S } = validateQueries(fn, q, x, config);
  const { nKvHeads: Hkv, headDim: D, vHeadDim: Dv } = config;
  const rowPool = Boolean(options.rowMap);
  const kvShape = (dim: number): string => (rowPool ? `[R, ${Hkv}, ${dim}]` : `[${B}, T, ${Hkv}, ${dim}]`);
  const kvOk = (t: Tensor, dim: number): boolean =>
    rowPool ? t.rank === 3 && t.shape[1] === Hkv && t.shape[2] === dim : t.rank === 4 && t.shape[0] === B && t.shape[2] === Hkv && t.shape[3] === dim;
  if (!kvOk(k, D)) throw new ShapeError({ fn, expected: `k of shape ${kvShape(D)}`, got: formatShape(k.shape) });
  if (!kvOk(v, Dv) || v.shape[0] !== k.shape[0] || (!rowPool && v.shape[1] !== k.shape[1])) {
    throw new ShapeError({ fn, expected: `v of shape ${kvShape(Dv)} matching k ${formatShape(k.shape)}`, got: formatShape(v.shape) });
  }
  const impl = options.implementation;
  if (impl !== undefined && impl !== 'auto' && impl !== 'fused' && impl !== 'composed') {
    throw new ConfigError({ fn, expected: "implementation 'auto', 'fused' or 'composed'", got: String(impl) });
  }
  const chunk = options.queryChunk;
  if (chunk !== undefined && (!Number.isInteger(chunk) || chunk < 1)) throw new ConfigError({ fn, expected: 'queryChunk to be a positive integer', got: String(chunk) });
  const T = options.rowMap ? (options.rowMap.shape[1] ?? 0) : (k.shape[1] as number);
  const lengths = options.kvLengths ?? new Array<number>(B).fill(T);
  if (lengths.length !== B) throw new ShapeError({ fn, expected: `kvLengths of ${B} entries`, got: String(lengths.length) });
  for (const [b, len] of lengths.entries()) {
    if (!Number.isInteger(len) || len < S || len > T) {
      throw new ShapeError({ fn, expected: `kvLengths[${b}] in [${S}, ${T}] (the ${S} queries end each sequence)`, got: String(len) });
    }
  }
  return { B, S, T, lengths };
}

/** q [B, S, Hq, D] (S ≥ 1) and the gate input x [B, S, gateDim], both f32. */
export function validateQueries(fn: string, q: Tensor, x: Tensor, config: ResolvedNSAConfig): { B: number; S: number } {
  q.assertAlive(fn);
  x.assertAlive(fn);
  const { nHeads: Hq, headDim: D, gateDim } = config;
  if (q.dtype !== 'f32' || x.dtype !== 'f32') throw new DTypeError({ fn, expected: 'q and x of dtype f32', got: `${q.dtype} and ${x.dtype}` });
  if (q.rank !== 4 || q.shape[2] !== Hq || q.shape[3] !== D) {
    throw new ShapeError({ fn, expected: `q of shape [B, S, ${Hq}, ${D}]`, got: formatShape(q.shape) });
  }
  const [B, S] = q.shape as readonly [number, number];
  if (S < 1) throw new ShapeError({ fn, expected: 'at least one query', got: formatShape(q.shape) });
  if (x.rank !== 3 || x.shape[0] !== B || x.shape[1] !== S || x.shape[2] !== gateDim) {
    throw new ShapeError({ fn, expected: `gate input x of shape [${B}, ${S}, ${gateDim}]`, got: formatShape(x.shape) });
  }
  return { B, S };
}
