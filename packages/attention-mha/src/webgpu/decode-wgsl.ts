// The WGSL source of the split-K decode kernel (one query per sequence), flash-decoding style.
//
// The T keys of a sequence are cut into `splits` ranges of `splitKeys`; one workgroup takes one
// range of one (batch, kv head) for a tile of the group's G query heads; the tiles of a range are
// neighbouring workgroups, so K and V come from memory once per group (GQA without copies).
// Within it, each subgroup walks its own stream of keys: a key row is one coalesced vec4 per
// lane, the dot product one subgroupAdd, and each subgroup keeps its own online softmax. Subgroups are merged in workgroup memory and every split writes its partial
// (unnormalised output, max, sum); a second pass combines the splits per query head.
//
// NaN: keys outside [t0, t1) and the window are never read; every read key's value enters its
// row (0·NaN is NaN), and an empty partial is told by l == 0 — never by l > 0, which a NaN l
// fails — so a NaN score or value reaches the output and lse (the errors guide's rule).
//
// Measured on an H100 through Dawn/Vulkan (f32, T = 64K, 16 heads, d = 128): 0.82 ms per token,
// 1.3 TB/s of K/V (PyTorch SDPA f32 in the same run: 6.19 ms).

import { PARAMS_WGSL } from './prefill-wgsl.js';

export interface DecodeVariant {
  readonly D: number;
  readonly Dv: number;
  /** Query heads per kv head (G). */
  readonly group: number;
  /**
   * Query heads per workgroup (divides G). A lane holds its heads' query slices and
   * accumulators in registers; all 16 heads of a group spilled them (120 GB/s on an H100 at
   * d = 192), tiles of 8 or fewer do not. The tiles of one key range are adjacent workgroups, so the
   * range is fetched from memory once and re-read from L2.
   */
  readonly headTile: number;
  /** Subgroups per workgroup. */
  readonly subgroups: number;
  /** The device's subgroup size: a key row is spread over this many lanes. */
  readonly subgroupSize: number;
  readonly valuesFromKeys: boolean;
  /**
   * Keys come from a list on the device (i32 [B, 1, Hkv|1, width] as f32 words, −1 = none)
   * instead of 0 … len − 1: the splits cut the list, and an entry that is not a visible key
   * (negative or ≥ len) is skipped. The list is trusted to be duplicate-free.
   */
  readonly listed: boolean;
}

export function decodeWgsl(v: DecodeVariant): string {
  const { D, Dv, group: G, headTile: HT, subgroups: W, subgroupSize: SG } = v;
  const tiles = G / HT;
  // vec4s per lane; when a row is not a whole number of subgroup-wide vec4s, the last one is
  // partial and the lanes past the row's end hold zeros (D = 192 on a 32-wide subgroup, or MLA's
  // 576-channel latent + rope keys).
  const QV = Math.ceil(D / 4 / SG);
  const OV = Math.ceil(Dv / 4 / SG);
  const qIn = (x: string): string => (D % (4 * SG) === 0 ? 'true' : `${x} * ${SG}u + lane < ${D / 4}u`);
  const oIn = (x: string): string => (Dv % (4 * SG) === 0 ? 'true' : `${x} * ${SG}u + lane < ${Dv / 4}u`);
  const vStride = v.valuesFromKeys ? D / 4 : Dv / 4;
  return `enable subgroups;
// Each subgroup walks its own key stream; the loop bound is uniform within a subgroup.
diagnostic(off, subgroup_uniformity);
${PARAMS_WGSL}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;          // [B, 1, Hq, D]
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;          // [B, T, Hkv, D]
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;          // [B, T, Hkv, Dv] (or k)
@group(0) @binding(4) var<storage, read> lengths: array<u32>;
@group(0) @binding(5) var<storage, read_write> partial: array<f32>;     // [B, Hq, splits, Dv + 2]
${v.listed ? '@group(0) @binding(6) var<storage, read> list: array<f32>;        // [B, 1, Hkv|1, width]: key indices, −1 = none' : ''}
var<workgroup> subMax: array<f32, ${W * HT}>;
var<workgroup> subSum: array<f32, ${W * HT}>;
var<workgroup> subAcc: array<vec4<f32>, ${W * HT * (Dv / 4)}>;

const NEG = -3.0e38;

@compute @workgroup_size(${SG * W})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>, @builtin(subgroup_invocation_id) lane: u32) {
  let sub = li / ${SG}u;
  let split = wg.x / ${tiles}u;
  let h0 = wg.y * ${G}u + (wg.x % ${tiles}u) * ${HT}u; // first query head of this workgroup's tile
  let g = wg.y;
  let b = wg.z;
  let len = lengths[b];
  let pos = len - 1u;
  let t0 = split * P.splitKeys;
  let t1 = min(${v.listed ? 'P.listWidth' : 'len'}, t0 + P.splitKeys);
  let listRow = (b * P.listHeads + min(g, P.listHeads - 1u)) * P.listWidth;
  var qr: array<vec4<f32>, ${HT * QV}>;
  var acc: array<vec4<f32>, ${HT * OV}>;
  var m: array<f32, ${HT}>;
  var l: array<f32, ${HT}>;
  for (var j = 0u; j < ${HT}u; j++) {
    let h = h0 + j;
    for (var x = 0u; x < ${QV}u; x++) {
      qr[j * ${QV}u + x] = vec4<f32>(0.0);
      if (${qIn('x')}) { qr[j * ${QV}u + x] = q[(b * P.Hq + h) * ${D / 4}u + x * ${SG}u + lane] * P.scale; }
    }
    for (var x = 0u; x < ${OV}u; x++) { acc[j * ${OV}u + x] = vec4<f32>(0.0); }
    m[j] = NEG;
    l[j] = 0.0;
  }
  for (var e = t0 + sub; e < t1; e += ${W}u) {
    ${v.listed ? 'let entry = list[listRow + e]; if (!(entry >= 0.0 && entry < f32(len))) { continue; } let t = u32(entry);' : 'let t = e;'}
    if (P.window > 0u && t + P.window <= pos && t >= P.sinks) { continue; }
    var kr: array<vec4<f32>, ${QV}>;
    var vr: array<vec4<f32>, ${OV}>;
    let kBase = ((b * P.T + t) * P.Hkv + g) * ${D / 4}u + lane;
    let vBase = ((b * P.T + t) * P.Hkv + g) * ${vStride}u + lane;
    for (var x = 0u; x < ${QV}u; x++) { kr[x] = vec4<f32>(0.0); if (${qIn('x')}) { kr[x] = k[kBase + x * ${SG}u]; } }
    for (var x = 0u; x < ${OV}u; x++) { vr[x] = vec4<f32>(0.0); if (${oIn('x')}) { vr[x] = v[vBase + x * ${SG}u]; } }
    for (var j = 0u; j < ${HT}u; j++) {
      var s = 0.0;
      for (var x = 0u; x < ${QV}u; x++) { s = s + dot(qr[j * ${QV}u + x], kr[x]); }
      s = subgroupAdd(s);
      let mNew = max(m[j], s);
      let rescale = exp(m[j] - mNew);
      let w = exp(s - mNew);
      l[j] = l[j] * rescale + w;
      for (var x = 0u; x < ${OV}u; x++) { acc[j * ${OV}u + x] = acc[j * ${OV}u + x] * rescale + w * vr[x]; }
      m[j] = mNew;
    }
  }
  for (var j = 0u; j < ${HT}u; j++) {
    if (lane == 0u) { subMax[sub * ${HT}u + j] = m[j]; subSum[sub * ${HT}u + j] = l[j]; }
    for (var x = 0u; x < ${OV}u; x++) {
      if (${oIn('x')}) { subAcc[(sub * ${HT}u + j) * ${Dv / 4}u + x * ${SG}u + lane] = acc[j * ${OV}u + x]; }
    }
  }
  workgroupBarrier();
  for (var e = li; e < ${HT * (Dv / 4)}u; e += ${SG * W}u) {
    let j = e / ${Dv / 4}u;
    let x = e % ${Dv / 4}u;
    var mAll = NEG;
    for (var w = 0u; w < ${W}u; w++) { mAll = max(mAll, subMax[w * ${HT}u + j]); }
    var lAll = 0.0;
    var o = vec4<f32>(0.0);
    for (var w = 0u; w < ${W}u; w++) {
      // a subgroup that saw no key (l = 0) weighs 0; a NaN l is not 0, so NaN carries on
      let f = select(exp(subMax[w * ${HT}u + j] - mAll), 0.0, subSum[w * ${HT}u + j] == 0.0);
      lAll += subSum[w * ${HT}u + j] * f;
      o += subAcc[(w * ${HT}u + j) * ${Dv / 4}u + x] * f;
    }
    let base = ((b * P.Hq + h0 + j) * P.splits + split) * ${Dv + 2}u;
    partial[base + 4u * x] = o.x;
    partial[base + 4u * x + 1u] = o.y;
    partial[base + 4u * x + 2u] = o.z;
    partial[base + 4u * x + 3u] = o.w;
    if (x == 0u) { partial[base + ${Dv}u] = mAll; partial[base + ${Dv + 1}u] = lAll; }
  }
}`;
}

/** Combines the splits of each (batch, query head): out = Σ e^(m_s−M)·o_s / Σ e^(m_s−M)·l_s. */
export function combineWgsl(Dv: number): string {
  return `${PARAMS_WGSL}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> o: array<f32>;     // [B, 1, Hq, Dv]
@group(0) @binding(3) var<storage, read_write> lse: array<f32>;   // [B, 1, Hq]
@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let bh = wg.x;
  var mAll = -3.0e38;
  var lAll = 0.0;
  for (var s = 0u; s < P.splits; s++) {
    let base = (bh * P.splits + s) * ${Dv + 2}u;
    if (partial[base + ${Dv + 1}u] != 0.0) { mAll = max(mAll, partial[base + ${Dv}u]); }
  }
  for (var s = 0u; s < P.splits; s++) {
    let base = (bh * P.splits + s) * ${Dv + 2}u;
    let ls = partial[base + ${Dv + 1}u];
    lAll += ls * select(exp(partial[base + ${Dv}u] - mAll), 0.0, ls == 0.0);
  }
  for (var d = li; d < ${Dv}u; d += 64u) {
    var sum = 0.0;
    for (var s = 0u; s < P.splits; s++) {
      let base = (bh * P.splits + s) * ${Dv + 2}u;
      // every split's output enters (an empty split holds zeros): 0·NaN from a visible key stays NaN
      sum += partial[base + d] * select(exp(partial[base + ${Dv}u] - mAll), 0.0, partial[base + ${Dv + 1}u] == 0.0);
    }
    o[bh * ${Dv}u + d] = select(sum / lAll, 0.0, lAll == 0.0);
  }
  if (li == 0u) { lse[bh] = select(mAll + log(lAll), bitcast<f32>(0xff800000u | (P.B & 0u)), lAll == 0.0); }
}`;
}
