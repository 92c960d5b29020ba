// WGSL sources of the fused WebGPU indexer (decode shape: a few queries per sequence), queued
// as one submission:
//
//   1. scores   I[r, t] = Σ_j w_j·ReLU(q_j·k_t) for every row r = (b, s) and visible key t
//               (−∞ past it); a key row sits in a lane's registers and serves every head of
//               every query, the queries' heads are staged in workgroup memory
//   2. select   an exact top-k per row by radix select on the scores' order-preserving u32
//               keys (NaN → the key of −∞, −0 → +0), MSB first in three digits of 11/11/10
//               bits: each digit a parallel histogram over the row (`hist`) and one workgroup
//               that finds the digit of the k-th largest key (`find`). That leaves the k-th
//               largest key u* and `need`, how many keys equal to u* the picks take.
//   3. compact  keys above u* are appended to a list (any order); keys equal to u* take their
//               rank among equals from a prefix count (`count`, then a scan in `compact`), so
//               the lowest indices win and go straight to their final slots after the others
//   4. order    each listed key's rank by (key desc, index asc) — its slot in the output —
//               and −1 in the slots past min(k, visible)
//
// The picks are exactly the reference's: the first min(k, visible) of the row sorted by score
// descending (NaN as −∞), ties toward the lower index. No pass reads anything back.
//
// Axis letters: B batch, S queries, T keys, H_I heads, D_I head dim, K picks, R = B·S rows.

/** Keys (and lanes) per workgroup of the scores pass. */
export const SCORE_TILE = 128;
/** Row entries per workgroup of the hist, count and compact passes (4 per lane). */
export const CHUNK = 1024;
/** Lanes of the select passes. */
export const SELECT_THREADS = 256;
/** Histogram bins of one digit (11 bits). */
export const BINS = 2048;
/** Workgroup memory the scores pass may use for staged query heads. */
const STAGE_BYTES = 8192;

/** Compile-time shape of the scores pass. */
export interface IndexerScoresVariant {
  /** D_I, a multiple of 4. */
  readonly headDim: number;
  /** Query heads staged in workgroup memory at a time. */
  readonly headChunk: number;
  /**
   * Keys stored as fp8-e4m3 (indexPrecision 'fp8'): byte pairs (codes 2e, 2e+1 as lo + 256·hi in
   * one f32 word) and one f32 scale per `P.keyBlock` values, a multiple of 4; else f32 values.
   */
  readonly fp8: boolean;
}

export function scoresVariant(headDim: number, fp8: boolean): IndexerScoresVariant {
  return { headDim, headChunk: Math.max(1, Math.floor(STAGE_BYTES / (headDim * 4))), fp8 };
}

/** Runtime sizes shared by every pass (12 words). */
export const PARAMS_WORDS = 12;
const PARAMS = `struct Params {
  B: u32, S: u32, HI: u32, T: u32,
  Tcap: u32, K: u32, R: u32, chunks: u32,
  negInf: f32, keyBlock: u32, unused1: u32, unused2: u32,
};
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> lengths: array<u32>;   // [B]
// Keys row r = (b, s) sees: its query sits at lengths[b] − S + s.
fn visibleOf(r: u32) -> u32 { return lengths[r / P.S] - P.S + r % P.S + 1u; }
// A score as a u32 of the same order. NaN ranks as −∞ (it gets −∞'s key) and −0 ties with +0.
fn orderKey(v: f32) -> u32 {
  let bits = bitcast<u32>(v);
  let magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) { return 0x007fffffu; }
  if (magnitude == 0u) { return 0x80000000u; }
  if (bits != magnitude) { return ~bits; }
  return bits | 0x80000000u;
}`;

/** Digit `level` (0 = most significant) of the radix select: its shift and bin mask. */
function digit(level: number): { shift: number; mask: string } {
  const shift = [21, 10, 0][level] ?? 0;
  return { shift, mask: level === 2 ? '0x3ffu' : '0x7ffu' };
}

/** fp8-e4m3 code → f32, as tensor-core's fp8E4m3ToF32 (S.1111.111 is NaN, no infinities). */
const FP8_WGSL = `fn fp8(code: u32) -> f32 {
  let e = (code >> 3u) & 15u;
  let m = code & 7u;
  var v = ldexp(1.0 + f32(m) * 0.125, i32(e) - 7);
  if (e == 0u) { v = f32(m) * 0.001953125; }       // subnormal: m · 2^−9
  if (e == 15u && m == 7u) { v = P.negInf - P.negInf; } // NaN, from a runtime value
  if ((code & 0x80u) != 0u) { v = -v; }
  return v;
}
// Elements e … e+3 (e a multiple of 4, inside one scale block) of the byte-pair keys, dequantised.
fn keyVec(e: u32) -> vec4<f32> {
  let lo = u32(keys[e / 2u]);
  let hi = u32(keys[e / 2u + 1u]);
  let codes = vec4<f32>(fp8(lo & 255u), fp8(lo >> 8u), fp8(hi & 255u), fp8(hi >> 8u));
  return codes * keyScales[e / P.keyBlock];
}`;

/** Bindings: params, lengths, q, w, keys, scores (+ key scales under fp8). Grid (⌈T / SCORE_TILE⌉, B). */
export function scoresWgsl(v: IndexerScoresVariant): string {
  const D4 = v.headDim / 4;
  const HC = v.headChunk;
  const keyRead = v.fp8 ? `keyVec(((b * P.Tcap + t) * ${D4}u + x) * 4u)` : `keys[(b * P.Tcap + t) * ${D4}u + x]`;
  return `${PARAMS}
@group(0) @binding(2) var<storage, read> q: array<vec4<f32>>;         // [B, S, H_I, D_I]
@group(0) @binding(3) var<storage, read> w: array<f32>;               // [B, S, H_I]
${v.fp8 ? '@group(0) @binding(4) var<storage, read> keys: array<f32>;           // [B, Tcap, 1, D_I] fp8 byte pairs' : '@group(0) @binding(4) var<storage, read> keys: array<vec4<f32>>;      // [B, Tcap, 1, D_I]'}
@group(0) @binding(5) var<storage, read_write> scores: array<f32>;    // [B, S, T]
${v.fp8 ? `@group(0) @binding(6) var<storage, read> keyScales: array<f32>;      // one per P.keyBlock key values
${FP8_WGSL}` : ''}
var<workgroup> qs: array<vec4<f32>, ${HC * D4}>;
var<workgroup> ws: array<f32, ${HC}>;

@compute @workgroup_size(${SCORE_TILE})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let b = wg.y;
  let t = wg.x * ${SCORE_TILE}u + li;
  let len = lengths[b];
  var kr: array<vec4<f32>, ${D4}>;
  for (var x = 0u; x < ${D4}u; x++) { kr[x] = vec4<f32>(0.0); }
  if (t < len) {
    for (var x = 0u; x < ${D4}u; x++) { kr[x] = ${keyRead}; }
  }
  for (var s = 0u; s < P.S; s++) {
    let r = b * P.S + s;
    let visible = t + P.S <= len + s; // t ≤ lengths[b] − S + s
    var score = 0.0;
    for (var h0 = 0u; h0 < P.HI; h0 += ${HC}u) {
      workgroupBarrier();
      for (var e = li; e < ${HC * D4}u; e += ${SCORE_TILE}u) {
        let j = h0 + e / ${D4}u;
        qs[e] = vec4<f32>(0.0);
        if (j < P.HI) { qs[e] = q[(r * P.HI + j) * ${D4}u + e % ${D4}u]; }
      }
      if (li < ${HC}u) {
        ws[li] = 0.0;
        if (h0 + li < P.HI) { ws[li] = w[r * P.HI + h0 + li]; }
      }
      workgroupBarrier();
      if (visible) {
        for (var j = 0u; j < ${HC}u; j++) {
          var d = 0.0;
          for (var x = 0u; x < ${D4}u; x++) { d = d + dot(qs[j * ${D4}u + x], kr[x]); }
          // ReLU(NaN) = 0; a NaN or infinite weight still reaches the score (w·0), as the reference
          score = score + ws[j] * select(0.0, d, d > 0.0);
        }
      }
    }
    if (t < P.T) { scores[r * P.T + t] = select(P.negInf, score, visible); }
  }
}`;
}

/**
 * Histogram of digit `level` over the row's visible keys whose higher digits match the prefix
 * found so far. Bindings: params, lengths, scores, hist[level] (+ state past level 0).
 * Grid (chunks, R).
 */
export function histWgsl(level: number): string {
  const { shift, mask } = digit(level);
  const above = shift + (level === 2 ? 10 : 11);
  return `${PARAMS}
@group(0) @binding(2) var<storage, read> scores: array<f32>;              // [R, T]
@group(0) @binding(3) var<storage, read_write> hist: array<atomic<u32>>;  // [R, BINS]
${level > 0 ? '@group(0) @binding(4) var<storage, read> state: array<u32>;               // [R, 2]: prefix, keys still wanted' : ''}
var<workgroup> local: array<atomic<u32>, ${BINS}>;

@compute @workgroup_size(${SELECT_THREADS})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let r = wg.y;
  let n = visibleOf(r);
  for (var i = li; i < ${BINS}u; i += ${SELECT_THREADS}u) { atomicStore(&local[i], 0u); }
  workgroupBarrier();
  ${level > 0 ? `let prefix = state[r * 2u] >> ${above}u;` : ''}
  for (var e = 0u; e < ${CHUNK / SELECT_THREADS}u; e++) {
    let t = wg.x * ${CHUNK}u + e * ${SELECT_THREADS}u + li;
    if (t < n) {
      let u = orderKey(scores[r * P.T + t]);
      if (${level > 0 ? `(u >> ${above}u) == prefix` : 'true'}) { atomicAdd(&local[(u >> ${shift}u) & ${mask}], 1u); }
    }
  }
  workgroupBarrier();
  for (var i = li; i < ${BINS}u; i += ${SELECT_THREADS}u) {
    let c = atomicLoad(&local[i]);
    if (c > 0u) { atomicAdd(&hist[r * ${BINS}u + i], c); }
  }
}`;
}

/**
 * The digit of the k-th largest key: the bin where the count from the top first reaches the
 * keys still wanted. Writes state[r] = (prefix with this digit, keys wanted within the bin).
 * Bindings: params, lengths, hist[level], state. Grid (R).
 */
export function findWgsl(level: number): string {
  const { shift } = digit(level);
  const perLane = BINS / SELECT_THREADS;
  return `${PARAMS}
@group(0) @binding(2) var<storage, read> hist: array<u32>;          // [R, BINS]
@group(0) @binding(3) var<storage, read_write> state: array<u32>;   // [R, 2]
var<workgroup> sums: array<u32, ${SELECT_THREADS}>;

@compute @workgroup_size(${SELECT_THREADS})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let r = wg.x;
  let picks = min(P.K, visibleOf(r));
  ${level === 0 ? 'let prefix = 0u;\n  let wanted = picks;' : 'let prefix = state[r * 2u];\n  let wanted = min(state[r * 2u + 1u], picks); // min() changes nothing: it keeps P and lengths in this layout'}
  var own: array<u32, ${perLane}>;
  var total = 0u;
  for (var i = 0u; i < ${perLane}u; i++) {
    own[i] = hist[r * ${BINS}u + li * ${perLane}u + i];
    total = total + own[i];
  }
  sums[li] = total;
  storageBarrier();
  workgroupBarrier();
  // Inclusive suffix sums over the lanes: sums[l] = keys in bins of lanes ≥ l.
  for (var s = 1u; s < ${SELECT_THREADS}u; s = s << 1u) {
    var add = 0u;
    if (li + s < ${SELECT_THREADS}u) { add = sums[li + s]; }
    workgroupBarrier();
    sums[li] = sums[li] + add;
    workgroupBarrier();
  }
  let higher = sums[li] - total; // keys in the bins of higher lanes
  if (higher < wanted && wanted <= higher + total) {
    var seen = higher;
    for (var i = ${perLane}i - 1; i >= 0; i--) {
      let c = own[u32(i)];
      if (seen + c >= wanted) {
        state[r * 2u] = prefix | ((li * ${perLane}u + u32(i)) << ${shift}u);
        state[r * 2u + 1u] = wanted - seen;
        break;
      }
      seen = seen + c;
    }
  }
}`;
}

/** Keys equal to u* per chunk. Bindings: params, lengths, scores, state, eqCounts. Grid (chunks, R). */
export function countWgsl(): string {
  return `${PARAMS}
@group(0) @binding(2) var<storage, read> scores: array<f32>;            // [R, T]
@group(0) @binding(3) var<storage, read> state: array<u32>;             // [R, 2]
@group(0) @binding(4) var<storage, read_write> eqCounts: array<u32>;    // [R, chunks]
var<workgroup> count: atomic<u32>;

@compute @workgroup_size(${SELECT_THREADS})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let r = wg.y;
  let n = visibleOf(r);
  let threshold = state[r * 2u];
  if (li == 0u) { atomicStore(&count, 0u); }
  workgroupBarrier();
  var mine = 0u;
  for (var e = 0u; e < ${CHUNK / SELECT_THREADS}u; e++) {
    let t = wg.x * ${CHUNK}u + e * ${SELECT_THREADS}u + li;
    if (t < n && orderKey(scores[r * P.T + t]) == threshold) { mine = mine + 1u; }
  }
  if (mine > 0u) { atomicAdd(&count, mine); }
  workgroupBarrier();
  if (li == 0u) { eqCounts[r * P.chunks + wg.x] = atomicLoad(&count); }
}`;
}

/**
 * Keys above u* to the list; keys equal to u* with rank < need straight to their output slot
 * (after the min(K, visible) − need listed ones). Bindings: params, lengths, scores, state,
 * eqCounts, listCounts, list, out. Grid (chunks, R).
 */
export function compactWgsl(): string {
  const per = CHUNK / SELECT_THREADS;
  return `${PARAMS}
@group(0) @binding(2) var<storage, read> scores: array<f32>;                   // [R, T]
@group(0) @binding(3) var<storage, read> state: array<u32>;                    // [R, 2]
@group(0) @binding(4) var<storage, read> eqCounts: array<u32>;                 // [R, chunks]
@group(0) @binding(5) var<storage, read_write> listCounts: array<atomic<u32>>; // [R]
@group(0) @binding(6) var<storage, read_write> list: array<vec2<u32>>;         // [R, K]: (key, index)
@group(0) @binding(7) var<storage, read_write> out: array<f32>;                // [R, K] picks
var<workgroup> scan: array<u32, ${SELECT_THREADS}>;

@compute @workgroup_size(${SELECT_THREADS})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let r = wg.y;
  let n = visibleOf(r);
  let threshold = state[r * 2u];
  let need = state[r * 2u + 1u];
  let listed = min(P.K, n) - need;
  // Keys equal to u* in the chunks before this one.
  var before = 0u;
  for (var c = li; c < wg.x; c += ${SELECT_THREADS}u) { before = before + eqCounts[r * P.chunks + c]; }
  scan[li] = before;
  workgroupBarrier();
  for (var s = ${SELECT_THREADS / 2}u; s > 0u; s = s >> 1u) {
    if (li < s) { scan[li] = scan[li] + scan[li + s]; }
    workgroupBarrier();
  }
  let chunkBase = scan[0];
  workgroupBarrier();
  // This lane's ${per} consecutive entries, and its equal keys' rank in the chunk (a scan).
  let t0 = wg.x * ${CHUNK}u + li * ${per}u;
  var keys: array<u32, ${per}>;
  var mine = 0u;
  for (var e = 0u; e < ${per}u; e++) {
    keys[e] = 0u; // below every key orderKey gives
    if (t0 + e < n) { keys[e] = orderKey(scores[r * P.T + t0 + e]); }
    if (t0 + e < n && keys[e] == threshold) { mine = mine + 1u; }
  }
  scan[li] = mine;
  workgroupBarrier();
  for (var s = 1u; s < ${SELECT_THREADS}u; s = s << 1u) {
    var add = 0u;
    if (li >= s) { add = scan[li - s]; }
    workgroupBarrier();
    scan[li] = scan[li] + add;
    workgroupBarrier();
  }
  var rank = chunkBase + scan[li] - mine;
  for (var e = 0u; e < ${per}u; e++) {
    let t = t0 + e;
    if (t >= n) { break; }
    if (keys[e] > threshold) {
      let slot = atomicAdd(&listCounts[r], 1u);
      list[r * P.K + slot] = vec2<u32>(keys[e], t);
    } else if (keys[e] == threshold) {
      if (rank < need) { out[r * P.K + listed + rank] = f32(t); }
      rank = rank + 1u;
    }
  }
}`;
}

/**
 * Each listed key to its slot (rank by key desc, index asc), −1 past min(K, visible).
 * Bindings: params, lengths, state, list, out. Grid (⌈K / SELECT_THREADS⌉, R).
 */
export function orderWgsl(): string {
  return `${PARAMS}
@group(0) @binding(2) var<storage, read> state: array<u32>;          // [R, 2]
@group(0) @binding(3) var<storage, read> list: array<vec2<u32>>;     // [R, K]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;      // [R, K]
var<workgroup> tile: array<vec2<u32>, ${SELECT_THREADS}>;
var<workgroup> listedShared: u32;

@compute @workgroup_size(${SELECT_THREADS})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let r = wg.y;
  let i = wg.x * ${SELECT_THREADS}u + li;
  let picks = min(P.K, visibleOf(r));
  if (li == 0u) { listedShared = picks - state[r * 2u + 1u]; }
  let listed = workgroupUniformLoad(&listedShared);
  var me = vec2<u32>(0u, 0u);
  if (i < listed) { me = list[r * P.K + i]; }
  var rank = 0u;
  for (var j0 = 0u; j0 < listed; j0 += ${SELECT_THREADS}u) {
    if (j0 + li < listed) { tile[li] = list[r * P.K + j0 + li]; }
    workgroupBarrier();
    let count = min(${SELECT_THREADS}u, listed - j0);
    if (i < listed) {
      for (var j = 0u; j < count; j++) {
        let o = tile[j];
        if (o.x > me.x || (o.x == me.x && o.y < me.y)) { rank = rank + 1u; }
      }
    }
    workgroupBarrier();
  }
  if (i < listed) {
    out[r * P.K + rank] = f32(me.y);
  } else if (i >= picks && i < P.K) {
    out[r * P.K + i] = -1.0;
  }
}`;
}
