// The WGSL source of the fused prefill kernel (any number of queries per sequence).
//
// One workgroup takes ROW_GROUPS × ROWS consecutive queries of one (batch, query head). Each
// invocation owns ROWS query rows and a lane-interleaved slice of each — vec4 j, j+LANES, … of
// q and of the output accumulator — so a key row loaded from workgroup memory feeds ROWS rows,
// and the LANES invocations of a row read consecutive banks. The LANES partial dot products of
// a row are summed with subgroup shuffles. Keys stream through workgroup memory in tiles of
// TILE_KEYS with an online softmax (running max m, running sum l, rescaled accumulator), so no
// score matrix exists anywhere. Without subgroups, LANES is 1 and a row is one invocation.
//
// A key a row does not see must contribute nothing, even when its value is NaN or ±∞ (0 · NaN
// is NaN). Dropping hidden keys' products takes a second, masked P·V loop on the tiles a mask
// edge crosses, and that loop's mere presence costs ~20% on an H100 (register allocation), though
// only ~3% of tiles run it. So the prefill comes in three passes built from this one source:
//  - 'hot': one P·V loop; a hidden key gets weight 0, exact whenever its value is finite. While
//    loading V it tests the values of keys hidden from some row of the workgroup (bit pattern:
//    exponent all ones is NaN or ±∞, immune to compilers that assume no NaN) and writes its
//    flag, 1 or 0, to flags[B, Hq, tiles] (every workgroup writes, so nothing needs clearing).
//  - 'fixup': dispatched right after 'hot' over the same grid, in the same pass; a workgroup
//    whose flag is 0 returns at once, a flagged one recomputes its rows with the masked loop on
//    edge tiles and overwrites o and lse. It runs only where a hidden key's value is not finite.
//  - 'masked': the single kernel with both loops (what ran before; kept to A/B against).
//
// A call with an AbortSignal dispatches the query tiles in chunks (firstTile.x names a chunk's
// first tile), so it can stop between them; without a signal one dispatch covers every tile.
//
// Measured on an H100 through Dawn/Vulkan (f32, causal, N = 8192, d = 128, 16 heads):
// ROWS 4, LANES 8, ROW_GROUPS 32, TILE_KEYS 16 → 19.5 TFLOP/s (PyTorch SDPA f32: 43.1).
// TILE_KEYS 32 spills the score registers and runs 5× slower.

/** Which pass of the prefill a pipeline is (see the file comment). */
export type PrefillPass = 'hot' | 'fixup' | 'masked';

export interface PrefillVariant {
  /** Query and key head dim (multiple of 4·lanes). */
  readonly D: number;
  /** Value head dim (multiple of 4·lanes). */
  readonly Dv: number;
  /** Query rows per invocation. */
  readonly rows: number;
  /** Invocations sharing one row (1 without subgroups; ≤ the subgroup size). */
  readonly lanes: number;
  /** Row groups per workgroup; the workgroup has rowGroups × lanes invocations. */
  readonly rowGroups: number;
  /** Keys per workgroup-memory tile. */
  readonly tileKeys: number;
  /** Values are the first Dv channels of each key row (MLA's latent). */
  readonly valuesFromKeys: boolean;
  readonly pass: PrefillPass;
}

/** Uniform block shared by the prefill and decode kernels (48 bytes). */
export const PARAMS_WGSL = `struct Params {
  B: u32, S: u32, T: u32, Hq: u32,
  Hkv: u32, group: u32, causal: u32, window: u32,
  sinks: u32, splitKeys: u32, splits: u32, scale: f32,
  listWidth: u32, listHeads: u32, pad0: u32, pad1: u32,
};`;

export function prefillWgsl(v: PrefillVariant): string {
  const { D, Dv, rows: R, lanes: L, rowGroups, tileKeys: BC, pass } = v;
  const QV = D / 4 / L;
  const OV = Dv / 4 / L;
  const THREADS = rowGroups * L;
  const BR = rowGroups * R;
  const vStride = v.valuesFromKeys ? D / 4 : Dv / 4;
  const laneSum = Array.from({ length: Math.log2(L) }, (_, i) => `s = s + subgroupShuffleXor(s, ${1 << i}u);`).join(' ');
  const hot = pass === 'hot';
  const flagged = pass !== 'masked';
  const flagIndex = '(b * P.Hq + h) * firstTile.y + firstTile.x + wg.x'; // [B, Hq, tiles]
  return `${L > 1 ? 'enable subgroups;' : ''}
${PARAMS_WGSL}
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;      // [B, S, Hq, D]
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;      // [B, T, Hkv, D]
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;      // [B, T, Hkv, Dv] (or k)
@group(0) @binding(4) var<storage, read> lengths: array<u32>;      // valid keys per sequence
@group(0) @binding(5) var<storage, read_write> o: array<vec4<f32>>;  // [B, S, Hq, Dv]
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;      // [B, S, Hq]
@group(0) @binding(7) var<uniform> firstTile: vec4<u32>;             // x: query tile of workgroup 0 (chunked dispatch), y: tiles
${flagged ? `@group(0) @binding(8) var<storage, ${hot ? 'read_write' : 'read'}> flags: array<f32>; // [B, Hq, tiles]: 1 where a hidden key's value is not finite\n` : ''}var<workgroup> sharedLength: u32;
${hot ? 'var<workgroup> hiddenNonFinite: atomic<u32>; // 1 when an invocation saw a hidden key\'s non-finite value\n' : ''}${pass === 'fixup' ? 'var<workgroup> sharedFlag: f32;\n' : ''}var<workgroup> kTile: array<vec4<f32>, ${BC * (D / 4)}>;
var<workgroup> vTile: array<vec4<f32>, ${BC * (Dv / 4)}>;

const NEG = -3.0e38;
${hot ? '' : 'const HIDDEN = -1.0; // the weight of a hidden key in the masked loop (real weights are ≥ 0 or NaN)\n'}
@compute @workgroup_size(${THREADS})
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wg: vec3<u32>) {
  let lane = li % ${L}u;
  let rowGroup = li / ${L}u;
  let b = wg.z;
  let h = wg.y;
  let g = h / P.group;
  // Loaded through workgroup memory so the key loop's bound is provably uniform (barriers inside).
  if (li == 0u) {
    sharedLength = lengths[b];${hot ? '\n    atomicStore(&hiddenNonFinite, 0u);' : ''}${pass === 'fixup' ? `\n    sharedFlag = flags[${flagIndex}];` : ''}
  }
  let len = workgroupUniformLoad(&sharedLength);${pass === 'fixup' ? '\n  // The hot pass got this workgroup right unless it saw a hidden key\'s non-finite value.\n  if (workgroupUniformLoad(&sharedFlag) == 0.0) { return; }' : ''}
  let row0 = (firstTile.x + wg.x) * ${BR}u; // first query of this workgroup
  let offset = len - P.S;                   // bottom-right: query i sits at position offset + i
  var qr: array<vec4<f32>, ${R * QV}>;
  var acc: array<vec4<f32>, ${R * OV}>;
  var m: array<f32, ${R}>;
  var l: array<f32, ${R}>;
  for (var r = 0u; r < ${R}u; r++) {
    let i = min(row0 + rowGroup * ${R}u + r, P.S - 1u);
    let qBase = ((b * P.S + i) * P.Hq + h) * ${D / 4}u + lane;
    for (var x = 0u; x < ${QV}u; x++) { qr[r * ${QV}u + x] = q[qBase + x * ${L}u] * P.scale; }
    for (var x = 0u; x < ${OV}u; x++) { acc[r * ${OV}u + x] = vec4<f32>(0.0); }
    m[r] = NEG;
    l[r] = 0.0;
  }
  // Key range this workgroup needs: causality stops at its last query's position.
  let lastPos = offset + min(row0 + ${BR - 1}u, P.S - 1u);
  var kEnd = len;
  if (P.causal == 1u) { kEnd = min(len, lastPos + 1u); }
  let firstPos = offset + row0;
  // Keys every real row of this workgroup sees: [0, sinks) ∪ [loAll, hiAll).
  var hiAll = len;
  if (P.causal == 1u) { hiAll = min(len, firstPos + 1u); }
  var loAll = 0u;
  if (P.window > 0u) { loAll = lastPos + 1u - min(P.window, lastPos + 1u); }
  for (var t0 = 0u; t0 < kEnd; t0 += ${BC}u) {
    // Tiles wholly before every query's window (and past the sinks) hold nothing visible.
    if (P.window > 0u && t0 >= P.sinks && t0 + ${BC}u + P.window <= firstPos + 1u) { continue; }
    workgroupBarrier();
    for (var e = li; e < ${BC * (D / 4)}u; e += ${THREADS}u) {
      let t = t0 + e / ${D / 4}u;
      kTile[e] = select(vec4<f32>(0.0), k[((b * P.T + t) * P.Hkv + g) * ${D / 4}u + e % ${D / 4}u], t < kEnd);
    }
    for (var e = li; e < ${BC * (Dv / 4)}u; e += ${THREADS}u) {
      let t = t0 + e / ${Dv / 4}u;
      let value = select(vec4<f32>(0.0), v[((b * P.T + t) * P.Hkv + g) * ${vStride}u + e % ${Dv / 4}u], t < kEnd);
      vTile[e] = value;${hot ? `
      // Exponent bits all ones: NaN or ±∞ (an integer test a compiler cannot fold away).
      let nonFinite = any((bitcast<vec4<u32>>(value) & vec4<u32>(0x7f800000u)) == vec4<u32>(0x7f800000u));
      let seenByAll = t < hiAll && (t >= loAll || t < P.sinks);
      if (nonFinite && !seenByAll) { atomicStore(&hiddenNonFinite, 1u); } // rare: no state kept across the tile` : ''}
    }
    workgroupBarrier();
    var p: array<f32, ${R * BC}>;
    for (var c = 0u; c < ${BC}u; c++) {
      var kr: array<vec4<f32>, ${QV}>;
      for (var x = 0u; x < ${QV}u; x++) { kr[x] = kTile[c * ${D / 4}u + x * ${L}u + lane]; }
      for (var r = 0u; r < ${R}u; r++) {
        var s = 0.0;
        for (var x = 0u; x < ${QV}u; x++) { s = s + dot(qr[r * ${QV}u + x], kr[x]); }
        ${laneSum}
        p[r * ${BC}u + c] = s;
      }
    }
    for (var r = 0u; r < ${R}u; r++) {
      let i = row0 + rowGroup * ${R}u + r;
      let pos = offset + i;
      // The row's visible keys as bounds, so the per-key test is two compares: a call with
      // branches in this loop measured 5.8× slower on an H100 (registers spilled).
      let hi = select(len, min(len, pos + 1u), P.causal == 1u);             // causality and length
      let lo = select(0u, pos + 1u - min(P.window, pos + 1u), P.window > 0u); // (pos − window, pos]
      var mNew = m[r];
      for (var c = 0u; c < ${BC}u; c++) {
        let t = t0 + c;
        let s = select(NEG, p[r * ${BC}u + c], i < P.S && t < hi && (t >= lo || t < P.sinks));
        p[r * ${BC}u + c] = s;
        mNew = max(mNew, s);
      }
      let rescale = exp(m[r] - mNew);
      l[r] = l[r] * rescale;
      for (var x = 0u; x < ${OV}u; x++) { acc[r * ${OV}u + x] = acc[r * ${OV}u + x] * rescale; }
      for (var c = 0u; c < ${BC}u; c++) {
        // A hidden key's score is exactly NEG; a NaN score is "visible" (NaN == NEG is false):
        // exp(NaN − m) = NaN reaches l. ${hot ? 'A hidden key weighs 0 (exp(NEG − NEG) would be 1).' : 'A hidden key weighs HIDDEN, which the masked P·V loop skips.'}
        let s = p[r * ${BC}u + c];
        let hidden = s == NEG;
${
  hot
    ? `        let w = select(exp(s - mNew), 0.0, hidden);
        p[r * ${BC}u + c] = w;
        l[r] = l[r] + w;`
    : `        let w = select(exp(s - mNew), HIDDEN, hidden);
        p[r * ${BC}u + c] = w;
        l[r] = l[r] + select(w, 0.0, hidden);`
}
      }
      m[r] = mNew;
    }
${hot ? hotPv(BC, Dv, OV, L, R) : maskedPv(BC, Dv, OV, L, R)}
  }
  for (var r = 0u; r < ${R}u; r++) {
    let i = row0 + rowGroup * ${R}u + r;
    if (i < P.S) {
      // A query that sees no key (or only −∞ scores: l == 0) outputs zeros and an lse of −∞
      // (built at run time: a constant −∞ is not a valid WGSL value). A NaN l is not 0: NaN out.
      let empty = l[r] == 0.0;
      let inv = 1.0 / l[r];
      let oBase = ((b * P.S + i) * P.Hq + h) * ${Dv / 4}u + lane;
      for (var x = 0u; x < ${OV}u; x++) { o[oBase + x * ${L}u] = select(acc[r * ${OV}u + x] * inv, vec4<f32>(0.0), empty); }
      if (lane == 0u) { lse[(b * P.S + i) * P.Hq + h] = select(m[r] + log(l[r]), bitcast<f32>(0xff800000u | (P.B & 0u)), empty); }
    }
  }${
    hot
      ? `
  // One flag per workgroup, written whatever it holds, so the buffer needs no clearing.
  workgroupBarrier();
  if (li == 0u) { flags[${flagIndex}] = select(0.0, 1.0, atomicLoad(&hiddenNonFinite) != 0u); }`
      : ''
  }
}`;
}

/** The hot pass's P·V: every key of the tile, a hidden one at weight 0. */
function hotPv(BC: number, Dv: number, OV: number, L: number, R: number): string {
  return `    for (var c = 0u; c < ${BC}u; c++) {
      var vr: array<vec4<f32>, ${OV}>;
      for (var x = 0u; x < ${OV}u; x++) { vr[x] = vTile[c * ${Dv / 4}u + x * ${L}u + lane]; }
      for (var r = 0u; r < ${R}u; r++) {
        let w = p[r * ${BC}u + c];
        for (var x = 0u; x < ${OV}u; x++) { acc[r * ${OV}u + x] = acc[r * ${OV}u + x] + w * vr[x]; }
      }
    }`;
}

/**
 * The masked P·V: inside the band every row sees every key (uniform test), the plain loop; on an
 * edge tile a hidden key's product is dropped, as 0 · a NaN in its value would reach the row.
 */
function maskedPv(BC: number, Dv: number, OV: number, L: number, R: number): string {
  return `    let edge = !(t0 + ${BC}u <= hiAll && (t0 >= loAll || t0 + ${BC}u <= P.sinks));
    if (edge) {
      for (var c = 0u; c < ${BC}u; c++) {
        var vr: array<vec4<f32>, ${OV}>;
        for (var x = 0u; x < ${OV}u; x++) { vr[x] = vTile[c * ${Dv / 4}u + x * ${L}u + lane]; }
        for (var r = 0u; r < ${R}u; r++) {
          let w = p[r * ${BC}u + c];
          let seen = w != HIDDEN;
          for (var x = 0u; x < ${OV}u; x++) { acc[r * ${OV}u + x] = acc[r * ${OV}u + x] + select(vec4<f32>(0.0), w * vr[x], seen); }
        }
      }
    } else {
${hotPv(BC, Dv, OV, L, R).replace(/^/gm, '  ')}
    }`;
}
