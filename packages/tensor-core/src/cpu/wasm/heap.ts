// The WebAssembly memory of one CpuBackend and the kernels instantiated over it. Kernels copy
// (pack) their operands into regions of this memory, run, and copy results out; regions are
// handed out first-fit and released when a call ends, so calls that interleave across an
// `await` (an attention kernel yielding to the event loop) never share scratch space.
// The memory grows on demand and never shrinks; views must be taken again after any growth,
// which `f32` / `i32` do.

import { BackendError } from '../../errors.js';
import { type WasmApi, type WasmInstance, type WasmMemory, webAssembly } from './api.js';
import { type Expr, FunctionBuilder, assembleModule, f32x4, get } from './emit.js';

const PAGE_BYTES = 65536;
const REGION_ALIGN = 64;

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

export class WasmHeap {
  readonly memory: WasmMemory;
  readonly #api: WasmApi;
  readonly #live: { start: number; end: number }[] = [];
  readonly #instances = new Map<string, Promise<WasmInstance>>();
  #f32: Float32Array;
  #i32: Int32Array;

  /** Throws a BackendError where the runtime has no WebAssembly (check `wasmSimdUnsupportedReason` first). */
  constructor() {
    const api = webAssembly();
    if (!api) throw new BackendError({ fn: 'WasmHeap', expected: 'a runtime with WebAssembly', got: 'none' });
    this.#api = api;
    this.memory = new api.Memory({ initial: 16 });
    this.#f32 = new Float32Array(this.memory.buffer);
    this.#i32 = new Int32Array(this.memory.buffer);
  }

  /** The whole heap as f32 (a fresh view after growth). */
  get f32(): Float32Array {
    if (this.#f32.buffer !== this.memory.buffer) this.#f32 = new Float32Array(this.memory.buffer);
    return this.#f32;
  }

  get i32(): Int32Array {
    if (this.#i32.buffer !== this.memory.buffer) this.#i32 = new Int32Array(this.memory.buffer);
    return this.#i32;
  }

  /** The module built by `build`, compiled and instantiated once per heap and key. */
  instance(key: string, build: () => Uint8Array<ArrayBuffer>): Promise<WasmInstance> {
    const found = this.#instances.get(key);
    if (found) return found;
    const created = this.#api.instantiate(build(), { env: { memory: this.memory } }).then((r) => r.instance);
    this.#instances.set(key, created);
    return created;
  }

  /** A free region of `bytes` (64-byte aligned), growing the memory when none fits. */
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
    if (end > this.memory.buffer.byteLength) {
      const pages = Math.ceil((end - this.memory.buffer.byteLength) / PAGE_BYTES);
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

  /** Bytes held by live regions (tests check that calls give everything back). */
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
