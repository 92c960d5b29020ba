// Decode over resident K/V in token order: `decodeSweep` walks a piece of the key range 4 keys
// at a time, and for each group of 4 every kv head in turn (one flashTile call of n ≤ 4 each), so
// K and V are read as one forward stream through memory, token row after token row.
//
// Why: the tile walks one head's keys, whose rows sit Hkv·D·4 bytes apart in a token-major cache,
// a stride no hardware prefetcher follows across 4 KiB pages. Head by head over 64-key tiles, a
// decode step was a sequential warm-up read of each tile (all heads) and then the heads' tiles
// from L2: memory time plus compute time, one after the other. In token order the prefetchers
// run ahead of the tiles, and the compute hides under the memory stream (one thread, MHA 8 × 128:
// 16–17 ms per 134 MB with warm-up + 64-key tiles, 10.5–12.5 ms in groups of 4 — the warm-up
// read alone took 10–12 ms).
//
// The sweep applies where every query row sees every key of the piece (no mask edge inside): the
// tiles then run unmasked, as flashTile's plain path. With one kv head the rows are contiguous
// already, and with many query rows per kv head (G = 16: a tie at 64K) each 4-key call's
// per-row softmax step costs what the stream saves: both keep the 64-key tiles (wasm-decode.ts,
// SWEEP_MAX_ROWS). Same process, 64K: MHA 8 × 128 57 → 30–38 ms, GQA 32/8 × 128 109–112 → 40–42.

import { wasm } from '@attnkit/tensor-core';

const { FunctionBuilder, block, br, brIf, call, forRange, get, i32, select, set } = wasm;

/** Keys per tile call of the sweep (one group of 4: measured best against 8, 16 and 64). */
export const SWEEP_KEYS = 4;

/**
 * `decodeSweep(q, R, k, kStride, kHead, v, vStride, vHead, from, to, meta, m, l, acc, s, Hkv)`:
 * keys [from, to) for the R query rows of each of Hkv kv heads (every position of the group's
 * heads); k and v point at key `from`'s rows of kv head 0, kHead / vHead bytes between heads.
 * q, m, l and acc hold kv head g's rows at [g·R, (g + 1)·R); meta (R rows) is the same for every
 * kv head. 16 i32 arguments, so a flashQueue built on it takes the same call tables as flashSpan
 * (s is argument 14).
 */
export function buildDecodeSweep(tileIndex: number, D: number, Dv: number): wasm.FunctionBuilder {
  const f = new FunctionBuilder('decodeSweep');
  const q = f.param('i32');
  const R = f.param('i32');
  const k = f.param('i32');
  const kStride = f.param('i32');
  const kHead = f.param('i32');
  const v = f.param('i32');
  const vStride = f.param('i32');
  const vHead = f.param('i32');
  const from = f.param('i32');
  const to = f.param('i32');
  const meta = f.param('i32');
  const m = f.param('i32');
  const l = f.param('i32');
  const acc = f.param('i32');
  const s = f.param('i32');
  const Hkv = f.param('i32');
  const t = f.local('i32');
  const n = f.local('i32');
  const g = f.local('i32');
  const kt = f.local('i32');
  const vt = f.local('i32');
  const rows = (bytesPerRow: number): wasm.Expr => i32.mul(i32.mul(get(g), get(R)), i32.const(bytesPerRow));
  f.body(
    set(t, get(from)),
    set(kt, get(k)),
    set(vt, get(v)),
    block(
      wasm.loop(
        brIf(1, i32.ge_s(get(t), get(to))),
        set(n, i32.sub(get(to), get(t))),
        set(n, select(get(n), i32.const(SWEEP_KEYS), i32.lt_s(get(n), i32.const(SWEEP_KEYS)))),
        forRange(
          g,
          i32.const(0),
          get(Hkv),
          1,
          call(
            tileIndex,
            i32.add(get(q), rows(4 * D)),
            get(R),
            i32.const(D),
            i32.add(get(kt), i32.mul(get(g), get(kHead))),
            get(kStride),
            i32.add(get(vt), i32.mul(get(g), get(vHead))),
            get(vStride),
            i32.const(Dv),
            get(n),
            get(t),
            get(meta),
            i32.add(get(m), rows(4)),
            i32.add(get(l), rows(4)),
            i32.add(get(acc), rows(4 * Dv)),
            get(s),
            i32.const(0),
          ),
        ),
        set(t, i32.add(get(t), i32.const(SWEEP_KEYS))),
        set(kt, i32.add(get(kt), i32.mul(get(kStride), i32.const(SWEEP_KEYS)))),
        set(vt, i32.add(get(vt), i32.mul(get(vStride), i32.const(SWEEP_KEYS)))),
        br(0),
      ),
    ),
  );
  return f;
}
