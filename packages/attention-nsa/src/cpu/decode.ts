// NSA's decode step fused on the CPU backend (`cpu-nsa-decode`): all three branches, block
// selection and the gates in one call, on the WebAssembly SIMD kernel of decode-kernel.ts and
// the backend's worker threads. The composed path runs ~30 tensor-core ops per step, and its
// compressed branch is three products of 16 query rows that the GEMM cannot spread over threads;
// here every branch is cut into runs of keys (jobs on one shared queue), each a partial softmax
// state merged afterwards, as the WebGPU step does (webgpu/nsa-decode.ts):
//   1. the compressed blocks and the window, cut into runs of ≤ RUN_KEYS keys;
//   2. block importance from the compressed runs' probabilities (kept in their score blocks),
//      top-n with the forced blocks (spec §4.3–4.4), on the host: ⌈T/l′⌉ ≤ a few thousand values;
//   3. the selected blocks, one run each;
//   4. the merges, the gates (x·W_gᵀ + b, sigmoid) and the gated sum, on the host.
// It applies to one query per sequence with f32 operands and head dims that are multiples of 4;
// anything else declines with its reason and runs composed.
//
// Axis letters: B batch, T keys, Hq / Hkv heads, G = Hq/Hkv, R = G rounded up to 4, D / Dv head dims.

import { type Backend, type CpuBackend, type Tensor, isCpuBackend, wasm } from '@attnkit/tensor-core';
import { type ResolvedNSAConfig, visibleCompressedBlocks } from '../config.js';
import { type NSADecodeOperands, namedOperands } from '../decode-operands.js';
import type { NSAWeights } from '../weights.js';
import { NSA_RUN_ARGS, type NSAQueue, RUN_KEYS, nsaDecodeModule } from './decode-kernel.js';

export const NSA_CPU_DECODE_KERNEL = 'cpu-nsa-decode';
/**
 * Below this many multiply-adds a phase runs on the calling thread. Waking an idle worker costs
 * 0.1–1.5 ms on this 2-vCPU VM (its postMessage alone 0.45 ms on average, idle), about what 8 Mi
 * multiply-adds take on one thread: at 64K, 1 kv head, the selected blocks' phase (5 Mi) ran
 * 3.1 ms per step on the calling thread against 3.3 ms handed off (session 7, idle).
 */
const PARALLEL_MIN_MADDS = 1 << 23;

export type NSACpuDecodeSupport = { readonly ok: true; readonly backend: CpuBackend; readonly heap: wasm.WasmHeap } | { readonly ok: false; readonly reason: string };

/** Whether the fused CPU decode applies, and if not, why. */
export function nsaCpuDecodeSupport(backend: Backend, ops: NSADecodeOperands, config: ResolvedNSAConfig, weights: NSAWeights): NSACpuDecodeSupport {
  const no = (reason: string): NSACpuDecodeSupport => ({ ok: false, reason });
  if (!isCpuBackend(backend)) return no(`needs the cpu backend (this is ${backend.info.name})`);
  const heap = backend.wasm;
  if (!heap) return no(`no WebAssembly SIMD: ${backend.wasmUnavailable ?? 'unavailable'}`);
  if (ops.q.shape[1] !== 1) return no(`${String(ops.q.shape[1])} queries per sequence (decode is 1)`);
  const { headDim: D, vHeadDim: Dv } = config;
  if (D % 4 !== 0 || Dv % 4 !== 0) return no(`head dims ${D}/${Dv}: multiples of 4 only`);
  for (const [name, t] of namedOperands(ops, weights)) if (t && t.dtype !== 'f32') return no(`${name} stored as ${t.dtype}: f32 only`);
  return { ok: true, backend, heap };
}

/** One run of keys of one (sequence, kv head, branch): its job's partial state. */
interface Run {
  readonly job: number;
  /** The run's first key (compressed block, or token) and its length. */
  readonly start: number;
  readonly n: number;
}

/** The step for ops on a supporting backend: out [B, 1, Hq, Dv]. */
export async function runNSACpuDecode(backend: CpuBackend, heap: wasm.WasmHeap, ops: NSADecodeOperands, config: ResolvedNSAConfig, weights: NSAWeights): Promise<Tensor> {
  const fn = 'nativeSparseAttention';
  const kernel = await nsaDecodeModule(heap, config.headDim, config.vHeadDim);
  const { nHeads: Hq, nKvHeads: Hkv, groupSize: G, headDim: D, vHeadDim: Dv, slcBlock, window } = config;
  const R = Math.ceil(G / 4) * 4;
  const B = ops.lengths.length;
  const T = ops.k.shape[1] as number;
  const cmpRows = ops.kCmp.shape[1] as number;
  using scope = heap.scope(fn);
  const at = (t: Tensor): number => heap.operandAt(backend.view(t), 0, t.size, scope.take, 16);
  const k = at(ops.k);
  const v = at(ops.v);
  const kCmp = ops.nCmp > 0 ? at(ops.kCmp) : 0;
  const vCmp = ops.nCmp > 0 ? at(ops.vCmp) : 0;
  // scaled queries, kv head g of sequence b at rows [(b·Hkv + g)·R, +G), zero rows up to R
  const qs = scope.take(4 * B * Hkv * R * D);
  {
    const f32 = heap.f32;
    const q = backend.view(ops.q);
    f32.fill(0, qs.index, qs.index + B * Hkv * R * D);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < Hq; h++) {
        const dst = qs.index + ((b * Hkv + Math.floor(h / G)) * R + (h % G)) * D;
        for (let d = 0; d < D; d++) f32[dst + d] = (q[(b * Hq + h) * D + d] as number) * config.scale;
      }
    }
  }
  const queue = new RunQueue(heap, scope, R, Dv);
  const rowsOf = (b: number, g: number): number => qs.byteOffset + 4 * (b * Hkv + g) * R * D;
  const kRow = (base: number, rows: number, dim: number) => (b: number, g: number, t: number): number => base + 4 * (((b * rows + t) * Hkv + g) * dim);
  const history = { k: kRow(k, T, D), v: kRow(v, T, Dv) };
  const compressed = { k: kRow(kCmp, cmpRows, D), v: kRow(vCmp, cmpRows, Dv) };
  const addRuns = (b: number, g: number, keys: typeof history, from: number, to: number, into: Run[]): void => {
    for (let t = from; t < to; t += RUN_KEYS) {
      const n = Math.min(RUN_KEYS, to - t);
      into.push({ job: queue.add(rowsOf(b, g), keys.k(b, g, t), 4 * Hkv * D, keys.v(b, g, t), 4 * Hkv * Dv, n, D + Dv), start: t, n });
    }
  };

  // 1. compressed blocks and window
  const cmpRuns: Run[][] = [];
  const winRuns: Run[][] = [];
  for (let b = 0; b < B; b++) {
    const len = ops.lengths[b] as number;
    const nc = Math.min(ops.nCmp, visibleCompressedBlocks(len - 1, config));
    for (let g = 0; g < Hkv; g++) {
      const cmp: Run[] = [];
      const win: Run[] = [];
      addRuns(b, g, compressed, 0, nc, cmp);
      addRuns(b, g, history, Math.max(0, len - window), len, win);
      cmpRuns.push(cmp);
      winRuns.push(win);
    }
  }
  await queue.run(kernel, backend.wasmThreads);

  // 2. selection, 3. the selected blocks
  const slcRuns: Run[][] = [];
  for (let b = 0; b < B; b++) {
    const len = ops.lengths[b] as number;
    for (let g = 0; g < Hkv; g++) {
      const runs: Run[] = [];
      const blocks = selectBlocks(blockImportance(queue, cmpRuns[b * Hkv + g] as Run[], G, len, config), len, config);
      for (const j of blocks) addRuns(b, g, history, j * slcBlock, Math.min(len, (j + 1) * slcBlock), runs);
      slcRuns.push(runs);
    }
  }
  await queue.run(kernel, backend.wasmThreads);

  // 4. merge, gates, gated sum
  const gates = gateValues(backend, ops.x, weights, Hq);
  const out = new Float32Array(B * Hq * Dv);
  const branch = new Float64Array(3 * Dv);
  for (let b = 0; b < B; b++) {
    for (let g = 0; g < Hkv; g++) {
      const group = b * Hkv + g;
      for (let r = 0; r < G; r++) {
        queue.merge(cmpRuns[group] as Run[], r, branch, 0);
        queue.merge(slcRuns[group] as Run[], r, branch, Dv);
        queue.merge(winRuns[group] as Run[], r, branch, 2 * Dv);
        const h = g * G + r;
        const gate = (br: number): number => gates[(b * Hq + h) * 3 + br] as number;
        const [gc, gs, gw] = [gate(0), gate(1), gate(2)];
        const dst = (b * Hq + h) * Dv;
        for (let d = 0; d < Dv; d++) out[dst + d] = gc * (branch[d] as number) + gs * (branch[Dv + d] as number) + gw * (branch[2 * Dv + d] as number);
      }
    }
  }
  return backend.wrap(out, [B, 1, Hq, Dv]);
}

/**
 * The jobs of one step: their arguments, and per job a score block, m, l and acc in the heap
 * (allocated per phase; the compressed runs' blocks stay until selection has read them).
 */
class RunQueue {
  readonly #heap: wasm.WasmHeap;
  readonly #scope: wasm.WasmRegionScope;
  readonly #R: number;
  readonly #Dv: number;
  readonly #pending: number[][] = [];
  #pendingMadds = 0;
  /** Byte address of each job's state: [s (R × RUN_KEYS) | m (R) | l (R) | acc (R × Dv)]. */
  readonly #state: number[] = [];
  #count = 0;

  constructor(heap: wasm.WasmHeap, scope: wasm.WasmRegionScope, R: number, Dv: number) {
    this.#heap = heap;
    this.#scope = scope;
    this.#R = R;
    this.#Dv = Dv;
  }

  get #stateBytes(): number {
    return 4 * this.#R * (RUN_KEYS + 2 + this.#Dv);
  }

  /** Byte addresses of a state at `base`: its score block, m, l and acc (row 0 of each). */
  #layout(base: number): { readonly s: number; readonly m: number; readonly l: number; readonly acc: number } {
    const R = this.#R;
    return { s: base, m: base + 4 * R * RUN_KEYS, l: base + 4 * R * (RUN_KEYS + 1), acc: base + 4 * R * (RUN_KEYS + 2) };
  }

  /** Queues one run of n keys with D/Dv-wide rows; returns its job number. */
  add(q: number, k: number, kStride: number, v: number, vStride: number, n: number, width: number): number {
    this.#pending.push([q, this.#R, k, kStride, v, vStride, n]);
    this.#pendingMadds += n * this.#R * width;
    return this.#count++;
  }

  /** Runs the queued jobs over the threads (the caller's included). */
  async run(kernel: wasm.WasmKernelModule, pool: wasm.WasmThreadPool | null): Promise<void> {
    const jobs = this.#pending.splice(0);
    const madds = this.#pendingMadds;
    this.#pendingMadds = 0;
    if (jobs.length === 0) return;
    const first = this.#state.length;
    const states = this.#scope.take(this.#stateBytes * jobs.length);
    const table = this.#scope.take(4 * NSA_RUN_ARGS * jobs.length + 4);
    const i32 = this.#heap.i32;
    jobs.forEach((args, i) => {
      const state = this.#layout(states.byteOffset + this.#stateBytes * i);
      this.#state[first + i] = state.s;
      i32.set([...args, state.s, state.m, state.l, state.acc], table.index + NSA_RUN_ARGS * i);
    });
    const counter = table.byteOffset + 4 * NSA_RUN_ARGS * jobs.length;
    i32[counter / 4] = 0;
    const args = [table.byteOffset, jobs.length, counter];
    const threads = madds < PARALLEL_MIN_MADDS ? 1 : Math.min(pool?.size ?? 1, jobs.length);
    if (!pool || threads < 2) {
      wasm.exported<NSAQueue>(kernel.instance, 'nsaQueue')(...(args as [number, number, number]));
      return;
    }
    await pool.run(kernel, 'nsaQueue', Array.from({ length: threads }, () => [args]));
  }

  /** Row r's probabilities of job `job`'s keys, relative to the run's own maximum. */
  probabilities(job: number, r: number): Float32Array {
    const s = (this.#state[job] as number) / 4 + r * RUN_KEYS;
    return this.#heap.f32.subarray(s, s + RUN_KEYS);
  }

  /**
   * Row r's weight of each run in the softmax over all of them, e^(m_j − M) / Σ_i e^(m_i − M)·l_i
   * (what its probabilities and acc are multiplied by); zeros without runs.
   */
  weights(runs: readonly Run[], r: number): Float64Array {
    const f32 = this.#heap.f32;
    const at = runs.map((run) => this.#layout(this.#state[run.job] as number));
    let M = -Infinity;
    for (const a of at) M = Math.max(M, f32[a.m / 4 + r] as number);
    const w = Float64Array.from(at, (a) => Math.exp((f32[a.m / 4 + r] as number) - M));
    let L = 0;
    at.forEach((a, j) => (L += (w[j] as number) * (f32[a.l / 4 + r] as number)));
    if (L === 0) return w.fill(0);
    return w.map((x) => x / L);
  }

  /** Row r's output over the runs, Σ_j weight_j · acc_j, into out[at, at + Dv); zeros without runs. */
  merge(runs: readonly Run[], r: number, out: Float64Array, at: number): void {
    const Dv = this.#Dv;
    const f32 = this.#heap.f32;
    const w = this.weights(runs, r);
    out.fill(0, at, at + Dv);
    runs.forEach((run, j) => {
      const acc = this.#layout(this.#state[run.job] as number).acc / 4 + r * Dv;
      for (let d = 0; d < Dv; d++) out[at + d] = (out[at + d] as number) + (w[j] as number) * (f32[acc + d] as number);
    });
  }
}

/**
 * Importance of the selection blocks 0..⌊p/l′⌋ for the query at p = len − 1 (spec §4.3): the
 * compressed blocks' probabilities summed over the G heads of the group, each block's spread
 * over the selection blocks it overlaps by its shared stride segments (toSelectionBlocks).
 */
function blockImportance(queue: RunQueue, runs: readonly Run[], G: number, len: number, config: ResolvedNSAConfig): Float64Array {
  const { cmpBlock: l, cmpStride: d, slcBlock } = config;
  const ns = Math.floor((len - 1) / slcBlock) + 1;
  const nc = runs.reduce((n, run) => n + run.n, 0);
  const p = new Float64Array(nc);
  for (let r = 0; r < G; r++) {
    const w = queue.weights(runs, r);
    runs.forEach((run, i) => {
      const row = queue.probabilities(run.job, r);
      for (let j = 0; j < run.n; j++) p[run.start + j] = (p[run.start + j] as number) + (w[i] as number) * (row[j] as number);
    });
  }
  // segment u (tokens [u·d, (u + 1)·d)) lies in compressed blocks u − l/d + 1 .. u
  const m = l / d;
  const perBlock = slcBlock / d;
  const scores = new Float64Array(ns);
  for (let u = 0; u < ns * perBlock; u++) {
    let c = 0;
    for (let i = Math.max(0, u - m + 1); i <= Math.min(u, nc - 1); i++) c += p[i] as number;
    scores[Math.floor(u / perBlock)] = (scores[Math.floor(u / perBlock)] as number) + c;
  }
  return scores;
}

/**
 * The top-n selection blocks by importance: the forced ones (the first nInit, the nLocal up to
 * the query's own) first, then the highest scores; ties go to the lower index.
 */
function selectBlocks(scores: Float64Array, len: number, config: ResolvedNSAConfig): number[] {
  const current = Math.floor((len - 1) / config.slcBlock);
  const n = Math.min(config.nSelected, scores.length);
  // rank as the composed path's top-k sees them (importance + the ±∞ mask): forced blocks +∞,
  // a NaN score −∞, ties to the lower index; insertion into the n best so far (⌈T/l′⌉·n
  // comparisons at most, no sort of every candidate)
  const rank = (j: number): number => {
    const score = scores[j] as number;
    return Number.isNaN(score) ? -Infinity : j < config.nInit || j > current - config.nLocal ? Infinity : score;
  };
  const before = (a: number, b: number): boolean => rank(a) > rank(b) || (rank(a) === rank(b) && a < b);
  const best: number[] = [];
  for (let j = 0; j < scores.length; j++) {
    if (best.length === n && !before(j, best[n - 1] as number)) continue;
    let at = best.length === n ? n - 1 : best.length;
    while (at > 0 && before(j, best[at - 1] as number)) {
      best[at] = best[at - 1] as number;
      at--;
    }
    best[at] = j;
  }
  return best;
}

/** sigmoid(x·W_gᵀ + b_g) [B·Hq·3], (head, branch) interleaved. */
function gateValues(backend: CpuBackend, x: Tensor, weights: NSAWeights, Hq: number): Float64Array {
  const xs = backend.view(x);
  const w = backend.view(weights.gateWeight);
  const bias = weights.gateBias ? backend.view(weights.gateBias) : null;
  const X = w.length / (3 * Hq);
  const B = xs.length / X;
  const gates = new Float64Array(B * 3 * Hq);
  for (let b = 0; b < B; b++) {
    for (let o = 0; o < 3 * Hq; o++) {
      let z = bias ? (bias[o] as number) : 0;
      for (let i = 0; i < X; i++) z += (xs[b * X + i] as number) * (w[o * X + i] as number);
      gates[b * 3 * Hq + o] = 1 / (1 + Math.exp(-z));
    }
  }
  return gates;
}
