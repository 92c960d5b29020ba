// The WebAssembly memory of one CpuBackend and the kernels instantiated over it. Kernels copy
// (pack) their operands into regions of this memory, run, and copy results out; regions are
// handed out first-fit and released when a call ends, so calls that interleave across an
// `await` (an attention kernel yielding to the event loop) never share scratch space.
// The memory grows on demand and never shrinks; views must be taken again after any growth,
// which `f32` / `i32` do. A shared heap (SharedArrayBuffer) is what worker threads run on
// (threads.ts); it needs a declared maximum, MAX_SHARED_PAGES.
// A shared heap also holds resident arrays (`allocResident`): the CpuBackend's large f32
// tensors (K/V caches among them) live there, so kernels read them in place instead of copying
// them in per call. A shared memory never detaches its buffer when it grows, so such views stay
// valid; an unshared one does, so it holds none.

import { BackendError } from '../../errors.js';
import { type WasmApi, type WasmInstance, type WasmMemory, type WasmModule, webAssembly } from './api.js';
import { type Expr, FunctionBuilder, type MemoryImport, assembleModule, f32x4, get } from './emit.js';

const PAGE_BYTES = 65536;
/**
 * 2 GiB: the most a shared heap may grow to (a shared memory reserves its maximum as address
 * space up front). Below 2^31, so byte offsets stay positive i32 values in the kernels.
 */
const MAX_SHARED_PAGES = 32768;
/** Resident arrays may take this share of a shared heap; the rest stays for kernels' scratch. */
const RESIDENT_SHARE = 0.75;
const REGION_ALIGN = 64;
/** Readable bytes the memory keeps past every region (see `alloc`): more than any kernel's slack. */
const TAIL_BYTES = 64;

/** Regions taken for one call (`WasmHeap.scope`). */
export interface WasmRegionScope extends Disposable {
  readonly take: (bytes: number) => WasmRegion;
}

/** A region of the heap, in bytes. Release it when the call that took it ends. */
export interface WasmRegion {
  readonly byteOffset: number;
  readonly byteLength: number;
  /** Element index of the region's start in an f32 / i32 view. */
  readonly index: number;
  release(): void;
}

/** Why this runtime cannot run the WebAssembly SIMD kernels, or null when it can. */
export function wasmSimdUnsupportedReason(): string | null {
  const api = webAssembly();
  if (!api) return 'WebAssembly is not available in this runtime';
  const probe = new FunctionBuilder('probe');
  const x = probe.param('v128');
  probe.body(drop(f32x4.add(get(x), get(x))));
  try {
    return api.validate(assembleModule({ minPages: 1 }, [probe])) ? null : 'this WebAssembly engine has no SIMD (f32x4)';
  } catch (e) {
    return `WebAssembly SIMD probe failed: ${String(e)}`;
  }
}

const drop = (e: Expr): Expr => [...e, 0x1a];

/**
 * Whether this engine validates relaxed SIMD (`f32x4.relaxed_madd`): kernels then use one FMA
 * per multiply-add. Node 20 has it behind `--experimental-wasm-relaxed-simd`; Node 22+ and
 * current browsers ship it.
 */
export function relaxedSimdSupported(): boolean {
  const api = webAssembly();
  if (!api) return false;
  const probe = new FunctionBuilder('probe');
  const x = probe.param('v128');
  probe.body(drop(f32x4.relaxed_madd(get(x), get(x), get(x))));
  try {
    return api.validate(assembleModule({ minPages: 1 }, [probe]));
  } catch {
    return false;
  }
}

/** A compiled kernel module and its instance on the heap's memory. */
export interface WasmKernelModule {
  readonly key: string;
  readonly module: WasmModule;
  readonly instance: WasmInstance;
}

export class WasmHeap {
  readonly memory: WasmMemory;
  /** How modules must import this memory. */
  readonly memoryImport: MemoryImport;
  /** Bytes the heap can grow to (no limit but the engine's when not shared). */
  readonly maxBytes: number;
  /** The engine validates relaxed SIMD: kernels may use `f32x4.relaxed_madd` (see relaxedSimdSupported). */
  readonly relaxedSimd: boolean;
  readonly #api: WasmApi;
  readonly #live: { start: number; end: number }[] = [];
  readonly #modules = new Map<string, Promise<WasmKernelModule>>();
  /** Every buffer object this memory has had (a shared memory's changes on growth). */
  readonly #buffers = new WeakSet<ArrayBufferLike>();
  #residentBytes = 0;
  #f32: Float32Array;
  #i32: Int32Array;

  /**
   * `shared`: back the heap with a SharedArrayBuffer, so worker threads can run kernels on it.
   * `relaxedSimd`: false keeps kernels on mul + add where the engine has relaxed SIMD (default:
   * use it where validated).
   * Throws a BackendError where the runtime has no WebAssembly (check `wasmSimdUnsupportedReason`
   * first) or cannot create a shared memory.
   */
  constructor(options: { shared?: boolean; relaxedSimd?: boolean } = {}) {
    const api = webAssembly();
    if (!api) throw new BackendError({ fn: 'WasmHeap', expected: 'a runtime with WebAssembly', got: 'none' });
    this.#api = api;
    this.relaxedSimd = options.relaxedSimd !== false && relaxedSimdSupported();
    const shared = options.shared === true;
    try {
      this.memory = shared ? new api.Memory({ initial: 16, maximum: MAX_SHARED_PAGES, shared: true }) : new api.Memory({ initial: 16 });
    } catch (e) {
      throw new BackendError({ fn: 'WasmHeap', expected: `a ${shared ? 'shared ' : ''}WebAssembly memory`, got: String(e) });
    }
    this.memoryImport = shared ? { minPages: 1, maxPages: MAX_SHARED_PAGES, shared: true } : { minPages: 1 };
    this.maxBytes = shared ? MAX_SHARED_PAGES * PAGE_BYTES : 2 ** 32 - PAGE_BYTES;
    this.#f32 = new Float32Array(this.memory.buffer);
    this.#i32 = new Int32Array(this.memory.buffer);
    this.#buffers.add(this.memory.buffer);
  }

  get shared(): boolean {
    return this.memoryImport.shared === true;
  }

  /** The whole heap as f32 (a fresh view after growth). */
  get f32(): Float32Array {
    if (this.#f32.buffer !== this.memory.buffer) {
      this.#f32 = new Float32Array(this.memory.buffer);
      this.#buffers.add(this.memory.buffer);
    }
    return this.#f32;
  }

  get i32(): Int32Array {
    if (this.#i32.buffer !== this.memory.buffer) {
      this.#i32 = new Int32Array(this.memory.buffer);
      this.#buffers.add(this.memory.buffer);
    }
    return this.#i32;
  }

  /**
   * A zero-filled f32 array of `count` values inside a shared heap, held until `release()`:
   * storage that kernels read in place (`byteOffsetOf`). Null when the heap is not shared or
   * resident arrays already hold their share of it (RESIDENT_SHARE): the caller then uses a
   * JavaScript array. `zero: false` leaves whatever the region held (an earlier call's scratch
   * or result): only for a kernel's output that the kernel overwrites in full.
   */
  allocResident(count: number, fn: string, options: { readonly zero?: boolean } = {}): { readonly data: Float32Array; release(): void } | null {
    const bytes = 4 * count;
    if (!this.shared || this.#residentBytes + bytes > RESIDENT_SHARE * this.maxBytes) return null;
    let region: WasmRegion;
    try {
      region = this.alloc(bytes, fn);
    } catch {
      return null; // the engine refused to grow the memory: plain arrays still work
    }
    const data = this.f32.subarray(region.index, region.index + count);
    if (options.zero !== false) data.fill(0); // a region may have held an earlier call's scratch
    this.#residentBytes += region.byteLength;
    let released = false;
    return {
      data,
      release: () => {
        if (released) return;
        released = true;
        this.#residentBytes -= region.byteLength;
        region.release();
      },
    };
  }

  /** Bytes held by resident arrays. */
  residentBytes(): number {
    return this.#residentBytes;
  }

  /** The byte offset of `a` in this heap's memory, or null when `a` lives elsewhere. */
  byteOffsetOf(a: Float32Array): number | null {
    return this.#buffers.has(a.buffer) ? a.byteOffset : null;
  }

  /**
   * The byte offset of a kernel operand, values[offset, offset + count), in this heap: where it
   * lies when `values` is in the heap with `slackBytes` of readable memory after it (a kernel's
   * last vector may load past the end), else a copy in a region from `take` (slack included).
   */
  operandAt(values: Float32Array, offset: number, count: number, take: (bytes: number) => WasmRegion, slackBytes = 0): number {
    const at = this.byteOffsetOf(values);
    if (at !== null && at + 4 * (offset + count) + slackBytes <= this.memory.buffer.byteLength) return at + 4 * offset;
    const region = take(4 * count + slackBytes);
    this.f32.set(values.subarray(offset, offset + count), region.index);
    return region.byteOffset;
  }

  /** The module `build` assembles for this heap's memory, compiled and instantiated once per key. */
  module(key: string, build: (memory: MemoryImport) => Uint8Array<ArrayBuffer>): Promise<WasmKernelModule> {
    const found = this.#modules.get(key);
    if (found) return found;
    const created = this.#api.compile(build(this.memoryImport)).then((module) => ({ key, module, instance: new this.#api.Instance(module, { env: { memory: this.memory } }) }));
    this.#modules.set(key, created);
    return created;
  }

  /** The instance of `module(key, build)`. */
  async instance(key: string, build: (memory: MemoryImport) => Uint8Array<ArrayBuffer>): Promise<WasmInstance> {
    return (await this.module(key, build)).instance;
  }

  /** Regions one call takes, all released when the scope is disposed (`using scope = heap.scope(fn)`). */
  scope(fn: string): WasmRegionScope {
    const taken: WasmRegion[] = [];
    return {
      take: (bytes) => {
        const region = this.alloc(bytes, fn);
        taken.push(region);
        return region;
      },
      [Symbol.dispose]: () => {
        for (const region of taken.splice(0)) region.release();
      },
    };
  }

  /**
   * A free region of `bytes` (64-byte aligned), growing the memory when none fits. The memory
   * always extends at least TAIL_BYTES past a region's end, so a kernel whose last vector loads
   * past an operand (`operandAt`'s slack) reads it in place even when it is the heap's last.
   */
  alloc(bytes: number, fn: string): WasmRegion {
    const size = Math.ceil(Math.max(bytes, 1) / REGION_ALIGN) * REGION_ALIGN;
    let start = 0;
    let at = 0;
    for (; at < this.#live.length; at++) {
      const r = this.#live[at] as { start: number; end: number };
      if (r.start - start >= size) break;
      start = r.end;
    }
    const end = start + size;
    if (end + TAIL_BYTES > this.memory.buffer.byteLength) {
      const pages = Math.ceil((end + TAIL_BYTES - this.memory.buffer.byteLength) / PAGE_BYTES);
      try {
        this.memory.grow(pages);
      } catch (e) {
        throw new BackendError({ fn, expected: `${end} bytes of WebAssembly memory`, got: `growth refused (${String(e)})` });
      }
    }
    const entry = { start, end };
    this.#live.splice(at, 0, entry);
    let released = false;
    return {
      byteOffset: start,
      byteLength: size,
      index: start / 4,
      release: () => {
        if (released) return;
        released = true;
        this.#live.splice(this.#live.indexOf(entry), 1);
      },
    };
  }

  /** Bytes held by live regions, resident arrays included (tests check that calls give everything back). */
  liveBytes(): number {
    return this.#live.reduce((s, r) => s + r.end - r.start, 0);
  }
}

/** Exported function `name` of an instance, typed by the caller's signature. */
export function exported<F extends (...args: number[]) => unknown>(instance: WasmInstance, name: string): F {
  const f = instance.exports[name];
  if (typeof f !== 'function') throw new BackendError({ fn: 'WasmHeap', expected: `an exported function ${name}`, got: typeof f });
  // The signature is the emitter's FunctionBuilder for `name`; WebAssembly types exports as Function.
  return f as F;
}
