// A small typed emitter of WebAssembly binaries, so the CPU backend's SIMD kernels are written in
// TypeScript and assembled at run time: no toolchain, nothing generated is committed, and
// `pnpm test` runs on a clean clone. Expressions are byte arrays built in WAT's folded order
// (`f32x4.add(a, b)` emits a, b, then the opcode), as in binaryen's API; a kernel is a list of
// statements. Only the instructions the kernels use are here; opcodes follow the core and SIMD
// specifications (https://webassembly.github.io/spec/core/binary/instructions.html).

export type ValType = 'i32' | 'f32' | 'v128';
/** Encoded instructions: one expression or statement, or a sequence of them. */
export type Expr = readonly number[];

const VALTYPE: Record<ValType, number> = { i32: 0x7f, f32: 0x7d, v128: 0x7b };

/** A parameter or local of one function: its index and type. */
export interface Local {
  readonly index: number;
  readonly type: ValType;
}

function uleb(n: number): number[] {
  const out: number[] = [];
  let v = n >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  let v = n | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

const utf8 = (s: string): number[] => {
  const bytes = new TextEncoder().encode(s);
  return [...uleb(bytes.length), ...bytes];
};
const vec = (items: readonly (readonly number[])[]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: readonly number[]): number[] => [id, ...uleb(body.length), ...body];

/** Concatenates expressions and statements in order. */
export const seq = (...parts: readonly Expr[]): Expr => parts.flat();

const op =
  (...code: number[]) =>
  (...args: readonly Expr[]): Expr => [...args.flat(), ...code];
const simd =
  (code: number) =>
  (...args: readonly Expr[]): Expr => [...args.flat(), 0xfd, ...uleb(code)];
/** log2 of the natural alignment (a hint only: unaligned addresses stay valid) and the offset. */
const memarg = (align: number, offset: number): number[] => [align, ...uleb(offset)];

// --- variables and constants -------------------------------------------------------------------

export const get = (l: Local): Expr => [0x20, ...uleb(l.index)];
export const set = (l: Local, value: Expr): Expr => [...value, 0x21, ...uleb(l.index)];
export const tee = (l: Local, value: Expr): Expr => [...value, 0x22, ...uleb(l.index)];

// --- control -----------------------------------------------------------------------------------

const EMPTY_BLOCK = 0x40;
export const block = (...body: readonly Expr[]): Expr => [0x02, EMPTY_BLOCK, ...body.flat(), 0x0b];
export const loop = (...body: readonly Expr[]): Expr => [0x03, EMPTY_BLOCK, ...body.flat(), 0x0b];
export const ifThen = (cond: Expr, then: readonly Expr[], otherwise?: readonly Expr[]): Expr =>
  otherwise ? [...cond, 0x04, EMPTY_BLOCK, ...then.flat(), 0x05, ...otherwise.flat(), 0x0b] : [...cond, 0x04, EMPTY_BLOCK, ...then.flat(), 0x0b];
/** Branch to the `depth`-th enclosing block (0 = innermost): a loop's start, a block's end. */
export const br = (depth: number): Expr => [0x0c, ...uleb(depth)];
export const brIf = (depth: number, cond: Expr): Expr => [...cond, 0x0d, ...uleb(depth)];
export const select = (a: Expr, b: Expr, cond: Expr): Expr => [...a, ...b, ...cond, 0x1b];
/** Calls function `index` of the module (its place in `assembleModule`'s list) with `args`. */
export const call = (index: number, ...args: readonly Expr[]): Expr => [...args.flat(), 0x10, ...uleb(index)];

/**
 * `for (i = from; i < to; i += step) body`, as block { loop { br_if 1 (i ≥ to); block { body };
 * i += step; br 0 } }. Directly inside `body`, `br(0)` continues with the next i and `br(2)`
 * breaks out of the loop.
 */
export const forRange = (i: Local, from: Expr, to: Expr, step: number, ...body: readonly Expr[]): Expr =>
  seq(set(i, from), block(loop(brIf(1, i32.ge_s(get(i), to)), block(...body), set(i, i32.add(get(i), i32.const(step))), br(0))));

// --- scalars -----------------------------------------------------------------------------------

export const i32 = {
  const: (n: number): Expr => [0x41, ...sleb(n)],
  load: (addr: Expr, offset = 0): Expr => [...addr, 0x28, ...memarg(2, offset)],
  store: (addr: Expr, value: Expr, offset = 0): Expr => [...addr, ...value, 0x36, ...memarg(2, offset)],
  /**
   * The i32 at addr before adding `value` to it, atomically (threads proposal: sequentially
   * consistent on a shared memory, and valid on an unshared one). addr must be 4-byte aligned.
   */
  atomic_rmw_add: (addr: Expr, value: Expr, offset = 0): Expr => [...addr, ...value, 0xfe, 0x1e, ...memarg(2, offset)],
  eqz: op(0x45),
  eq: op(0x46),
  ne: op(0x47),
  lt_s: op(0x48),
  gt_s: op(0x4a),
  le_s: op(0x4c),
  ge_s: op(0x4e),
  add: op(0x6a),
  sub: op(0x6b),
  mul: op(0x6c),
  and: op(0x71),
  or: op(0x72),
  shl: op(0x74),
  shr_s: op(0x75),
};

export const f32 = {
  const: (x: number): Expr => [0x43, ...new Uint8Array(new Float32Array([x]).buffer)],
  load: (addr: Expr, offset = 0): Expr => [...addr, 0x2a, ...memarg(2, offset)],
  store: (addr: Expr, value: Expr, offset = 0): Expr => [...addr, ...value, 0x38, ...memarg(2, offset)],
  eq: op(0x5b),
  lt: op(0x5d),
  gt: op(0x5e),
  ge: op(0x60),
  abs: op(0x8b),
  add: op(0x92),
  sub: op(0x93),
  mul: op(0x94),
  div: op(0x95),
  min: op(0x96),
  max: op(0x97),
  convert_i32_s: op(0xb2),
};

// --- SIMD (v128) -------------------------------------------------------------------------------

export const v128 = {
  load: (addr: Expr, offset = 0): Expr => [...addr, 0xfd, 0x00, ...memarg(4, offset)],
  /** One f32 from memory into all four lanes. */
  load32_splat: (addr: Expr, offset = 0): Expr => [...addr, 0xfd, 0x09, ...memarg(2, offset)],
  store: (addr: Expr, value: Expr, offset = 0): Expr => [...addr, ...value, 0xfd, 0x0b, ...memarg(4, offset)],
  const: (bytes: readonly number[]): Expr => [0xfd, 0x0c, ...bytes],
  and: simd(0x4e),
  or: simd(0x50),
  not: simd(0x4d),
  /** lanes of a where mask bits are set, else of b. */
  bitselect: simd(0x52),
  any_true: simd(0x53),
};

/** Lanes of the concatenation a ‖ b picked by 16 byte indices (0–31). */
export const shuffleBytes = (a: Expr, b: Expr, lanes: readonly number[]): Expr => [...a, ...b, 0xfd, 0x0d, ...lanes];
/** The same as `shuffleBytes` in 32-bit lanes (0–7). */
export const shuffle32 = (a: Expr, b: Expr, lanes: readonly [number, number, number, number]): Expr =>
  shuffleBytes(
    a,
    b,
    lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]),
  );

export const f32x4 = {
  splat: simd(0x13),
  extract_lane: (v: Expr, lane: number): Expr => [...v, 0xfd, 0x1f, lane],
  eq: simd(0x41),
  ne: simd(0x42),
  lt: simd(0x43),
  gt: simd(0x44),
  ge: simd(0x46),
  nearest: simd(0x6a),
  add: simd(0xe4),
  sub: simd(0xe5),
  mul: simd(0xe6),
  div: simd(0xe7),
  min: simd(0xe8),
  max: simd(0xe9),
  /**
   * b < a ? b : a, lane-wise (one `minps` on x86, where `min` is ~6 instructions for its NaN and
   * ±0 rules): a NaN in a is kept, a NaN in b ignored.
   */
  pmin: simd(0xea),
  /** a < b ? b : a, lane-wise (one `maxps`): a NaN in a is kept, a NaN in b ignored. */
  pmax: simd(0xeb),
  convert_i32x4_s: simd(0xfa),
  /**
   * a·b + c, fused or not as the engine chooses (relaxed SIMD: validate before use; Node 20 has
   * it behind --experimental-wasm-relaxed-simd).
   */
  relaxed_madd: simd(0x105),
};

export const i32x4 = {
  splat: simd(0x11),
  extract_lane: (v: Expr, lane: number): Expr => [...v, 0xfd, 0x1b, lane],
  lt_s: simd(0x39),
  ge_s: simd(0x3f),
  shl: simd(0xab),
  add: simd(0xae),
  trunc_sat_f32x4_s: simd(0xf8),
};

/** i32x4 lane constant [a, b, c, d] as v128.const bytes. */
export const i32x4Const = (lanes: readonly [number, number, number, number]): Expr => v128.const([...new Uint8Array(new Int32Array(lanes).buffer)]);

// --- functions and modules ---------------------------------------------------------------------

/** One exported function: parameters first, then locals, then the body. */
export class FunctionBuilder {
  readonly #params: ValType[] = [];
  readonly #locals: ValType[] = [];
  #body: Expr = [];

  constructor(readonly name: string) {}

  param(type: ValType): Local {
    if (this.#locals.length > 0) throw new Error(`[wasm ${this.name}] parameters must be declared before locals`);
    this.#params.push(type);
    return { index: this.#params.length - 1, type };
  }

  local(type: ValType): Local {
    this.#locals.push(type);
    return { index: this.#params.length + this.#locals.length - 1, type };
  }

  body(...statements: readonly Expr[]): this {
    this.#body = statements.flat();
    return this;
  }

  signature(): number[] {
    return [0x60, ...vec(this.#params.map((t) => [VALTYPE[t]])), ...vec([])];
  }

  code(): number[] {
    const groups = this.#locals.map((t) => [...uleb(1), VALTYPE[t]]);
    const bytes = [...vec(groups), ...this.#body, 0x0b];
    return [...uleb(bytes.length), ...bytes];
  }
}

/** Memory the module imports as `env.memory` (shared memories need a maximum). */
export interface MemoryImport {
  readonly minPages: number;
  readonly maxPages?: number;
  readonly shared?: boolean;
}

/** A module of exported functions over one imported memory. */
export function assembleModule(memory: MemoryImport, functions: readonly FunctionBuilder[]): Uint8Array<ArrayBuffer> {
  const limits =
    memory.maxPages === undefined ? [0x00, ...uleb(memory.minPages)] : [memory.shared ? 0x03 : 0x01, ...uleb(memory.minPages), ...uleb(memory.maxPages)];
  const bytes = [
    ...[0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00],
    ...section(1, vec(functions.map((f) => f.signature()))),
    ...section(2, vec([[...utf8('env'), ...utf8('memory'), 0x02, ...limits]])),
    ...section(3, vec(functions.map((_, i) => uleb(i)))),
    ...section(7, vec(functions.map((f, i) => [...utf8(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vec(functions.map((f) => f.code()))),
  ];
  return new Uint8Array(bytes);
}
