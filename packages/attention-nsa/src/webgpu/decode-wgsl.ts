// WGSL sources of NSA's fused decode step (one query per sequence), four passes queued together:
//
//   1. partials (compressed)  online-softmax partials of the compressed branch in tasks of ≤ 128
//                 blocks; each task also writes its raw scores scale·q·K_cmp, and its (max, sum)
//                 are the softmax statistics the select pass needs, so every compressed key is
//                 scored once (an earlier version scored them again for the branch: ~30% more work)
//   2. select     per (sequence, kv head): softmax stats per head (merged from pass 1's tasks),
//                 block importance (spec §4.3),
//                 forced blocks, top-n (ties toward the lower index) → the selected block list
//   3. partials (sparse)  the same kernel over the selected blocks (read from pass 2's list, on
//                 the device) and the sliding window — all heads of a tile share each key read
//   4. combine    per (sequence, query head): the gates sigmoid(W_g·x + b) and the gated sum of
//                 the three branches merged from their partials
//
// NaN follows the attention core's rule: keys that are not visible are never read; a NaN score
// or value of a visible key reaches the output (empty partials are told by l = 0, never by
// l > 0, which a NaN l fails); a NaN block importance ranks below every number in the top-n.
//
// Nothing is read back between passes: the block list never leaves the device, and it needs no
// deduplication (top-n picks distinct blocks) or range check (it is built from the lengths).

/** Compile-time shape of a fused decode pipeline set. */
export interface NSADecodeVariant {
  readonly D: number;
  readonly Dv: number;
  /** Query heads per kv head (G). */
  readonly group: number;
  /**
   * Query heads per workgroup in passes 1 and 3 (divides G). A kv head's G heads are split in
   * tiles so a lane's query rows and accumulators stay in registers: with G = 16 and d = 192
   * they spilled (the dense decode kernel ran at 120 GB/s on an H100 in that shape).
   */
  readonly headTile: number;
  /** Subgroups per workgroup in passes 1 and 3. */
  readonly subgroups: number;
  readonly subgroupSize: number;
}

/** Runtime sizes, one uniform block shared by all four passes (24 words). */
export const NSA_PARAMS_WGSL = `struct Params {
  B: u32, Hq: u32, Hkv: u32, T: u32,
  nCap: u32, nSel: u32, nInit: u32, nLocal: u32,
  cmpBlock: u32, cmpStride: u32, slcBlock: u32, window: u32,
  cmpTasks: u32, slcTasks: u32, winTasks: u32, cmpChunk: u32,
  slcPerTask: u32, winChunk: u32, unused: u32, gateDim: u32,
  hasBias: u32, cmpRows: u32, unused2: u32, scale: f32,
};
// Complete compressed blocks of a sequence of len tokens: block i is visible once i·d + l − 1 ≤ len − 1.
fn visibleBlocks(len: u32) -> u32 {
  if (len < P.cmpBlock) { return 0u; }
  return min(P.nCap, (len - P.cmpBlock) / P.cmpStride + 1u);
}`;

/** Keys per task in passes 1 and 3 (a selected-block task takes ⌈128/l′⌉ blocks). */
export const TASK_KEYS = 128;
/** Selection blocks the select pass holds in workgroup memory (256K tokens at l′ = 64). */
export const MAX_SELECTION_BLOCKS = 4096;
/** Invocations of the select pass (a tree reduction: a power of two). */
export const SELECT_THREADS = 256;
/** Invocations of the combine pass (a power of two; one per output channel at Dv = 128). */
export const COMBINE_THREADS = 128;
/** Tasks of pass 3 the combine pass holds in workgroup memory (a 1M-token window of compressed blocks). */
export const MAX_TASKS = 1024;

const NEG = '-3.0e38';

/** Lanes spread a row of `dim` channels as vec4s; the last vec4 per lane may be past the row. */
function laneSlices(dim: number, sg: number): { count: number; inRow: (x: string) => string } {
  return {
    count: Math.ceil(dim / 4 / sg),
    inRow: (x) => (dim % (4 * sg) === 0 ? 'true' : `${x} * ${sg}u + lane < ${dim / 4}u`),
  };
}

/** The scaled query rows of the workgroup's head tile, QV vec4 slices per lane. */
function loadQueries(v: NSADecodeVariant): string {
  const qs = laneSlices(v.D, v.subgroupSize);
  return `var qr: array<vec4<f32>, ${v.headTile * qs.count}>;
  for (var j = 0u; j < ${v.headTile}u; j++) {
    for (var x = 0u; x < ${qs.count}u; x++) {
      qr[j * ${qs.count}u + x] = vec4<f32>(0.0);
      if (${qs.inRow('x')}) { qr[j * ${qs.count}u + x] = q[(b * P.Hq + h0 + j) * ${v.D / 4}u + x * ${v.subgroupSize}u + lane] * P.scale; }
    }
  }`;
}

export function selectWgsl(v: NSADecodeVariant): string {
  const { group: G, Dv, subgroupSize: SG } = v;
  const N = SELECT_THREADS;
  const SUBS = Math.max(1, N / SG);
  return `enable subgroups;
diagnostic(off, subgroup_uniformity);
${NSA_PARAMS_WGSL}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> lengths: array<u32>;
@group(0) @binding(2) var<storage, read> scores: array<f32>;            // [B, Hq, nCap]
@group(0) @binding(3) var<storage, read> partial: array<f32>;           // [B, Hq, tasks, Dv + 2]: pass 1's (max, sum) per task
@group(0) @binding(4) var<storage, read_write> selected: array<i32>;    // [B, Hkv, n], −1 = none
var<workgroup> sharedLength: u32;
var<workgroup> redV: array<f32, ${2 * SUBS}>;  // per subgroup, two rounds' worth
var<workgroup> redI: array<u32, ${2 * SUBS}>;
var<workgroup> headMax: array<f32, ${G}>;
var<workgroup> headSum: array<f32, ${G}>;  // 1 / Σ
var<workgroup> importance: array<f32, ${MAX_SELECTION_BLOCKS}>;

// Forced blocks outrank every probability sum (which is at most G·l′/d).
const FORCED = 3.0e38;
// Ranks in the top-n: importance ≥ 0 (forced: FORCED) > a NaN importance, which ranks as −∞
// does in tensor-core's topK (below every number, lower index first) > a block already taken.
const NAN_RANK = -1.0;
const TAKEN = -2.0;

@compute @workgroup_size(${N})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let g = wg.x;
  let b = wg.y;
  let sub = li / ${SG}u;
  if (li == 0u) { sharedLength = lengths[b]; }
  let len = workgroupUniformLoad(&sharedLength);
  let nc = visibleBlocks(len);
  let current = (len - 1u) / P.slcBlock;      // the query's own selection block
  let candidates = current + 1u;
  let take = min(P.nSel, candidates);

  // p_cmp's softmax statistics per query head, merged from pass 1's compressed tasks
  let tasks = P.cmpTasks + P.slcTasks + P.winTasks;
  for (var j = li; j < ${G}u; j += ${N}u) {
    let row = (b * P.Hq + g * ${G}u + j) * tasks;
    var m = ${NEG};
    var l = 0.0;
    for (var c = 0u; c < P.cmpTasks; c++) {
      let at = (row + c) * ${Dv + 2}u + ${Dv}u;
      let st = vec2<f32>(partial[at], partial[at + 1u]);
      if (st.y != 0.0) { // an empty task has l = 0; a NaN l carries on
        let mNew = max(m, st.x);
        l = l * exp(m - mNew) + st.y * exp(st.x - mNew);
        m = mNew;
      }
    }
    headMax[j] = m;
    headSum[j] = 1.0 / l; // inf when no block is visible; then no score is read below
  }
  workgroupBarrier();

  // importance s[j] = Σ_heads Σ_i p_cmp[i]·|block_i ∩ block_j|/d over the blocks overlapping j;
  // the G scores of a block are loaded together before they are used (independent loads)
  for (var jb = li; jb < candidates; jb += ${N}u) {
    let a = jb * P.slcBlock;
    let lo = select(0u, (a + P.cmpStride - P.cmpBlock) / P.cmpStride, a + 1u > P.cmpBlock);
    let hi = min(nc, (a + P.slcBlock - 1u) / P.cmpStride + 1u);
    var s = 0.0;
    for (var i = lo; i < hi; i++) {
      let overlap = min(i * P.cmpStride + P.cmpBlock, a + P.slcBlock) - max(i * P.cmpStride, a);
      let segments = f32(overlap / P.cmpStride);
      var row: array<f32, ${G}>;
      for (var j = 0u; j < ${G}u; j++) { row[j] = scores[(b * P.Hq + g * ${G}u + j) * P.nCap + i]; }
      var p = 0.0;
      for (var j = 0u; j < ${G}u; j++) { p += exp(row[j] - headMax[j]) * headSum[j]; }
      s += p * segments;
    }
    if (jb < P.nInit || jb + P.nLocal > current) { s = FORCED; }
    importance[jb] = s;
  }
  workgroupBarrier();

  // top-n: n rounds of a workgroup argmax, the lower index winning ties. A round is a subgroup
  // argmax, one barrier, and every invocation merging the subgroups' winners itself (a tree over
  // workgroup memory took a barrier per level: this pass ran ~70 µs at 64K on an H100). The
  // winner's owner (the invocation that scans it) marks it taken; results alternate between two
  // halves of redV/redI so the next round never overwrites what a slower invocation still reads.
  let selRow = (b * P.Hkv + g) * P.nSel;
  for (var r = 0u; r < take; r++) {
    var bestV = -3.0;
    var bestI = 0xffffffffu;
    for (var jb = li; jb < candidates; jb += ${N}u) {
      let raw = importance[jb];
      let x = select(NAN_RANK, raw, raw >= 0.0 || raw < 0.0); // false only for NaN (x == x may be folded away)
      if (x > bestV) { bestV = x; bestI = jb; }
    }
    let subV = subgroupMax(bestV);
    let subI = subgroupMin(select(0xffffffffu, bestI, bestV == subV));
    let half = (r & 1u) * ${SUBS}u;
    if (lane == 0u) { redV[half + sub] = subV; redI[half + sub] = subI; }
    workgroupBarrier();
    var winV = redV[half];
    var winI = redI[half];
    for (var w = 1u; w < ${SUBS}u; w++) {
      let ov = redV[half + w];
      let oi = redI[half + w];
      if (ov > winV || (ov == winV && oi < winI)) { winV = ov; winI = oi; }
    }
    if (winI < candidates && winI % ${N}u == li) { importance[winI] = TAKEN; }
    if (li == 0u) { selected[selRow + r] = i32(winI); }
  }
  for (var r = take + li; r < P.nSel; r += ${N}u) { selected[selRow + r] = -1; }
}`;
}

/** Which keys a partials pipeline walks: pass 1's compressed blocks, or pass 3's selected blocks and window. */
export type PartialsBranches = 'compressed' | 'sparse';

export function partialsWgsl(v: NSADecodeVariant, branches: PartialsBranches): string {
  const { D, Dv, headTile: HT, group: G, subgroups: W, subgroupSize: SG } = v;
  const compressed = branches === 'compressed';
  const ks = laneSlices(D, SG);
  const vs = laneSlices(Dv, SG);
  // One key of a branch: its row read once (a vec4 per lane), scored for the G heads, folded in.
  // Pass 1 also keeps each raw score: the select pass turns them into block importance.
  const keepScore = compressed ? `if (lane == 0u) { scores[(b * P.Hq + h0 + j) * P.nCap + i] = s; }` : '';
  const key = (kBuf: string, vBuf: string, row: string): string => `{
      let row = ${row};
      var kr: array<vec4<f32>, ${ks.count}>;
      var vr: array<vec4<f32>, ${vs.count}>;
      for (var x = 0u; x < ${ks.count}u; x++) { kr[x] = vec4<f32>(0.0); if (${ks.inRow('x')}) { kr[x] = ${kBuf}[row * ${D / 4}u + x * ${SG}u + lane]; } }
      for (var x = 0u; x < ${vs.count}u; x++) { vr[x] = vec4<f32>(0.0); if (${vs.inRow('x')}) { vr[x] = ${vBuf}[row * ${Dv / 4}u + x * ${SG}u + lane]; } }
      for (var j = 0u; j < ${HT}u; j++) {
        var s = 0.0;
        for (var x = 0u; x < ${ks.count}u; x++) { s = s + dot(qr[j * ${ks.count}u + x], kr[x]); }
        s = subgroupAdd(s);
        ${keepScore}
        let mNew = max(m[j], s);
        let rescale = exp(m[j] - mNew);
        let w = exp(s - mNew);
        l[j] = l[j] * rescale + w;
        for (var x = 0u; x < ${vs.count}u; x++) { acc[j * ${vs.count}u + x] = acc[j * ${vs.count}u + x] * rescale + w * vr[x]; }
        m[j] = mNew;
      }
    }`;
  return `enable subgroups;
// Each subgroup walks its own keys; loop bounds are uniform within a subgroup.
diagnostic(off, subgroup_uniformity);
${NSA_PARAMS_WGSL}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;         // [B, 1, Hq, D]
${
  compressed
    ? `@group(0) @binding(2) var<storage, read> kc: array<vec4<f32>>;        // K_cmp [B, cmpRows, Hkv, D]
@group(0) @binding(3) var<storage, read> vc: array<vec4<f32>>;        // V_cmp [B, cmpRows, Hkv, Dv]
@group(0) @binding(5) var<storage, read_write> scores: array<f32>;    // [B, Hq, nCap]`
    : `@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;         // [B, T, Hkv, D]
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;         // [B, T, Hkv, Dv]
@group(0) @binding(5) var<storage, read> selected: array<i32>;        // [B, Hkv, n]`
}
@group(0) @binding(4) var<storage, read> lengths: array<u32>;
@group(0) @binding(6) var<storage, read_write> partial: array<f32>;   // [B, Hq, tasks, Dv + 2]
var<workgroup> subMax: array<f32, ${W * HT}>;
var<workgroup> subSum: array<f32, ${W * HT}>;
var<workgroup> subAcc: array<vec4<f32>, ${W * HT * (Dv / 4)}>;

@compute @workgroup_size(${SG * W})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let sub = li / ${SG}u;
  let task = wg.x${compressed ? '' : ' + P.cmpTasks'}; // pass 3's tasks follow pass 1's in the partials
  let g = wg.y / ${G / HT}u;                           // kv head
  let h0 = g * ${G}u + (wg.y % ${G / HT}u) * ${HT}u;  // first query head of this workgroup's tile
  let b = wg.z;
  let len = lengths[b];
  ${loadQueries(v)}
  var acc: array<vec4<f32>, ${HT * vs.count}>;
  var m: array<f32, ${HT}>;
  var l: array<f32, ${HT}>;
  for (var j = 0u; j < ${HT}u; j++) {
    for (var x = 0u; x < ${vs.count}u; x++) { acc[j * ${vs.count}u + x] = vec4<f32>(0.0); }
    m[j] = ${NEG};
    l[j] = 0.0;
  }
  ${
    compressed
      ? `{
    // compressed blocks [i0, i1)
    let i0 = task * P.cmpChunk;
    let i1 = min(visibleBlocks(len), i0 + P.cmpChunk);
    for (var i = i0 + sub; i < i1; i += ${W}u) ${key('kc', 'vc', '(b * P.cmpRows + i) * P.Hkv + g')}
  }`
      : `if (task < P.cmpTasks + P.slcTasks) {
    // selected blocks: tokens of the listed blocks, the query's own block cut at len − 1
    let first = (task - P.cmpTasks) * P.slcPerTask;
    let span = min(P.slcPerTask, P.nSel - first) * P.slcBlock;
    for (var e = sub; e < span; e += ${W}u) {
      let blk = selected[(b * P.Hkv + g) * P.nSel + first + e / P.slcBlock];
      let t = u32(max(blk, 0)) * P.slcBlock + e % P.slcBlock;
      if (blk < 0 || t >= len) { continue; }
      ${key('k', 'v', '(b * P.T + t) * P.Hkv + g')}
    }
  } else {
    // the sliding window: the last w tokens, the query's included
    let start = select(0u, len - P.window, len > P.window);
    let t0 = start + (task - P.cmpTasks - P.slcTasks) * P.winChunk;
    let t1 = min(len, t0 + P.winChunk);
    for (var t = t0 + sub; t < t1; t += ${W}u) ${key('k', 'v', '(b * P.T + t) * P.Hkv + g')}
  }`
  }
  for (var j = 0u; j < ${HT}u; j++) {
    if (lane == 0u) { subMax[sub * ${HT}u + j] = m[j]; subSum[sub * ${HT}u + j] = l[j]; }
    for (var x = 0u; x < ${vs.count}u; x++) {
      if (${vs.inRow('x')}) { subAcc[(sub * ${HT}u + j) * ${Dv / 4}u + x * ${SG}u + lane] = acc[j * ${vs.count}u + x]; }
    }
  }
  workgroupBarrier();
  let tasks = P.cmpTasks + P.slcTasks + P.winTasks;
  for (var e = li; e < ${HT * (Dv / 4)}u; e += ${SG * W}u) {
    let j = e / ${Dv / 4}u;
    let x = e % ${Dv / 4}u;
    var mAll = ${NEG};
    for (var w = 0u; w < ${W}u; w++) { mAll = max(mAll, subMax[w * ${HT}u + j]); }
    var lAll = 0.0;
    var o = vec4<f32>(0.0);
    for (var w = 0u; w < ${W}u; w++) {
      let f = select(exp(subMax[w * ${HT}u + j] - mAll), 0.0, subSum[w * ${HT}u + j] == 0.0); // empty: l = 0; NaN carries on
      lAll += subSum[w * ${HT}u + j] * f;
      o += subAcc[(w * ${HT}u + j) * ${Dv / 4}u + x] * f;
    }
    let base = ((b * P.Hq + h0 + j) * tasks + task) * ${Dv + 2}u;
    partial[base + 4u * x] = o.x;
    partial[base + 4u * x + 1u] = o.y;
    partial[base + 4u * x + 2u] = o.z;
    partial[base + 4u * x + 3u] = o.w;
    if (x == 0u) { partial[base + ${Dv}u] = mAll; partial[base + ${Dv + 1}u] = lAll; }
  }
}`;
}

export function combineWgsl(Dv: number): string {
  const N = COMBINE_THREADS;
  return `${NSA_PARAMS_WGSL}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;      // [B, Hq, tasks, Dv + 2]
@group(0) @binding(2) var<storage, read> xIn: array<f32>;         // gate input [B, 1, gateDim]
@group(0) @binding(3) var<storage, read> gateWeight: array<f32>;  // W_g [3·Hq, gateDim], rows (head, branch)
@group(0) @binding(4) var<storage, read> gateBias: array<f32>;    // b_g [3·Hq] (unread without a bias)
@group(0) @binding(5) var<storage, read_write> o: array<f32>;     // [B, 1, Hq, Dv]
var<workgroup> red: array<f32, ${3 * N}>;
// Per task: its max and sum, then its weight in the output. Every step below reads workgroup
// memory or issues independent loads: a thread walking the tasks' partials one dependent load
// after another made this pass latency-bound.
var<workgroup> taskMax: array<f32, ${MAX_TASKS}>;
var<workgroup> taskSum: array<f32, ${MAX_TASKS}>;
var<workgroup> weight: array<f32, ${MAX_TASKS}>;
var<workgroup> branch: array<vec2<f32>, 3>;

@compute @workgroup_size(${N})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let h = wg.x;
  let b = wg.y;
  let tasks = P.cmpTasks + P.slcTasks + P.winTasks;
  let base = (b * P.Hq + h) * tasks * ${Dv + 2}u;
  for (var t = li; t < tasks; t += ${N}u) {
    taskMax[t] = partial[base + t * ${Dv + 2}u + ${Dv}u];
    taskSum[t] = partial[base + t * ${Dv + 2}u + ${Dv + 1}u];
  }
  var z = vec3<f32>(0.0);
  for (var c = li; c < P.gateDim; c += ${N}u) {
    let xv = xIn[b * P.gateDim + c];
    z += vec3<f32>(gateWeight[(h * 3u) * P.gateDim + c], gateWeight[(h * 3u + 1u) * P.gateDim + c], gateWeight[(h * 3u + 2u) * P.gateDim + c]) * xv;
  }
  red[li] = z.x;
  red[${N}u + li] = z.y;
  red[${2 * N}u + li] = z.z;
  workgroupBarrier();
  for (var s = ${N / 2}u; s > 0u; s = s >> 1u) {
    if (li < s) {
      red[li] += red[li + s];
      red[${N}u + li] += red[${N}u + li + s];
      red[${2 * N}u + li] += red[${2 * N}u + li + s];
    }
    workgroupBarrier();
  }
  // branch c covers tasks [first(c), first(c + 1)): its max and normaliser, from workgroup memory
  if (li < 3u) {
    let t0 = select(select(P.cmpTasks + P.slcTasks, P.cmpTasks, li == 1u), 0u, li == 0u);
    let t1 = select(select(tasks, P.cmpTasks + P.slcTasks, li == 1u), P.cmpTasks, li == 0u);
    var mAll = ${NEG};
    for (var t = t0; t < t1; t++) { if (taskSum[t] != 0.0) { mAll = max(mAll, taskMax[t]); } }
    var lAll = 0.0;
    for (var t = t0; t < t1; t++) { lAll += taskSum[t] * select(exp(taskMax[t] - mAll), 0.0, taskSum[t] == 0.0); }
    branch[li] = vec2<f32>(mAll, lAll);
  }
  workgroupBarrier();
  var logits = vec3<f32>(red[0], red[${N}u], red[${2 * N}u]);
  if (P.hasBias != 0u) { logits += vec3<f32>(gateBias[h * 3u], gateBias[h * 3u + 1u], gateBias[h * 3u + 2u]); }
  let gate = 1.0 / (1.0 + exp(-logits));
  // a task's weight: its branch's gate over the branch's normaliser; an empty branch (no visible
  // key, l = 0) and an empty task contribute 0
  for (var t = li; t < tasks; t += ${N}u) {
    let c = select(select(2u, 1u, t < P.cmpTasks + P.slcTasks), 0u, t < P.cmpTasks);
    let st = branch[c];
    weight[t] = select(gate[c] * exp(taskMax[t] - st.x) / st.y, 0.0, st.y == 0.0 || taskSum[t] == 0.0);
  }
  workgroupBarrier();
  for (var d = li; d < ${Dv}u; d += ${N}u) {
    var sum = 0.0;
    for (var t = 0u; t < tasks; t++) {
      sum += weight[t] * partial[base + t * ${Dv + 2}u + d]; // empty tasks hold zeros; 0·NaN stays NaN
    }
    o[(b * P.Hq + h) * ${Dv}u + d] = sum;
  }
}`;
}
