// Compiled-once gpu.js kernels. A kernel is compiled the first time its key is used and kept
// for the backend's lifetime; sizes reach it as Integer arguments and through a dynamic
// output, so one compilation serves every shape of its family (on WebGPU the sizes are
// uniforms). On webasm gpu.js assembles a small module per size signature, each with its own
// WebAssembly.Memory, and keeps eight per kernel: with dozens of kernels and a decode loop whose
// sizes grow every step, that is hundreds of live memories, and a browser refuses new ones long
// before (Chromium: after ~80 decode steps of the docs' model). So the runtime bounds the
// modules of all its kernels together (least recently used first out).

import { ConfigError } from '../errors.js';
import type { Device, DeviceArray, WordKind } from './device.js';
import { type GpujsArgType, type GpujsInstance, type GpujsKernelHandle, identifiersForGlsl } from './gpujs-lib.js';

/** Kinds of kernel parameters: a bound array, an i32 scalar, an f32 scalar. */
export type ParamKind = 'array' | 'int' | 'float';

export type OutputGrid = readonly [number] | readonly [number, number] | readonly [number, number, number];

/** A gpu.js kernel as attnkit describes it. */
export interface KernelSpec {
  /** Cache key: one compilation per key and backend. */
  readonly key: string;
  /** A plain function: gpu.js compiles its source text, so it must not close over anything. */
  readonly fn: (...args: never[]) => number;
  /** Parameter kinds, in the order of `fn`'s parameters. */
  readonly params: Readonly<Record<string, ParamKind>>;
  /** Rank of the output grid (fixed at compilation). */
  readonly rank: 1 | 2 | 3;
  readonly constants?: Readonly<Record<string, number | Float32Array>>;
  /** Scalar helper functions called by `fn`. */
  readonly functions?: readonly ((...args: number[]) => number)[];
}

export type KernelArg = DeviceArray | number;

/** WebAssembly modules (one WebAssembly.Memory each) a backend keeps by default on webasm. */
export const DEFAULT_MAX_WASM_MODULES = 48;

/** The webasm modules of a runtime's kernels. */
export interface WasmModuleReport {
  /** Modules gpu.js holds now (each with its own WebAssembly.Memory). */
  readonly live: number;
  /** Modules assembled so far (a size signature seen again after its release counts again). */
  readonly assembled: number;
  /** Modules released by the runtime's bound (gpu.js' own per-kernel eviction not counted). */
  readonly released: number;
  /** The bound on `live`. */
  readonly limit: number;
}

interface Compiled {
  readonly spec: KernelSpec;
  readonly handle: GpujsKernelHandle;
  readonly order: readonly string[];
  /** Calls on one kernel serialise: the output size is kernel state. */
  tail: Promise<unknown>;
  lastGrid: string;
}

const ARG_TYPE: Readonly<Record<ParamKind, GpujsArgType>> = { array: 'Array', int: 'Integer', float: 'Float' };

export class KernelRuntime {
  readonly #gpu: GpujsInstance;
  readonly #device: Device;
  readonly #kernels = new Map<string, Compiled>();
  readonly #fallbacks = new Map<string, string>();
  /** webasm modules by `kernel key \n size signature`, least recently used first. */
  readonly #modules = new Map<string, { readonly compiled: Compiled; readonly signature: string }>();
  readonly #maxModules: number;
  #assembled = 0;
  #released = 0;

  constructor(gpu: GpujsInstance, device: Device, maxModules = DEFAULT_MAX_WASM_MODULES) {
    this.#gpu = gpu;
    this.#device = device;
    this.#maxModules = Math.max(1, maxModules);
  }

  /** The webasm modules the kernels hold (zeros on the other modes). */
  get wasmModules(): WasmModuleReport {
    let live = 0;
    for (const k of this.#kernels.values()) live += k.handle.moduleSignatures().length;
    return { live, assembled: this.#assembled, released: this.#released, limit: this.#maxModules };
  }

  /** Number of compiled kernels. */
  get size(): number {
    return this.#kernels.size;
  }

  /** Kernels gpu.js moved to its cpu backend, with the reason (empty when all run in their mode). */
  get fallbacks(): ReadonlyMap<string, string> {
    return this.#fallbacks;
  }

  /** Compiles `spec` (once per key) and returns nothing; useful to warm a kernel up. */
  compiled(spec: KernelSpec): Compiled {
    const existing = this.#kernels.get(spec.key);
    if (existing) {
      if (existing.spec.fn !== spec.fn && existing.spec.fn.toString() !== spec.fn.toString()) {
        throw new ConfigError({ fn: 'GpujsBackend.kernel', expected: `one function per kernel key ("${spec.key}")`, got: 'a different function under the same key' });
      }
      return existing;
    }
    const source = identifiersForGlsl(spec.fn.toString());
    // Parameters are matched by position: bundlers rename parameters that shadow outer names
    // (esbuild turns `x` into `x2`), so the source's names are used for gpu.js and the
    // spec's names for the caller's arguments.
    const sourceNames = parameterNames(source);
    const order = Object.keys(spec.params);
    if (sourceNames.length !== order.length) {
      throw new ConfigError({
        fn: 'GpujsBackend.kernel',
        expected: `one param kind per function parameter (${sourceNames.join(', ')})`,
        got: order.join(', '),
      });
    }
    const argumentTypes: Record<string, GpujsArgType> = {};
    order.forEach((name, i) => {
      argumentTypes[sourceNames[i] ?? name] = ARG_TYPE[spec.params[name] ?? 'float'];
    });
    const handle = this.#gpu.createKernel(source, {
      output: spec.rank === 1 ? [1] : spec.rank === 2 ? [1, 1] : [1, 1, 1],
      argumentTypes,
      ...(spec.constants ? { constants: spec.constants } : {}),
      ...(spec.functions ? { functions: spec.functions } : {}),
    });
    const compiled: Compiled = { spec, handle, order, tail: Promise.resolve(), lastGrid: '' };
    this.#kernels.set(spec.key, compiled);
    return compiled;
  }

  /**
   * Runs `spec` over `grid` (x fastest) and returns its output as a new device array of
   * grid-size words. Arguments are given by the names of `spec.params`.
   */
  run(spec: KernelSpec, args: Readonly<Record<string, KernelArg>>, grid: OutputGrid, kind: WordKind = 'f32'): Promise<DeviceArray> {
    if (grid.length !== spec.rank) throw new Error(`kernel ${spec.key} has a rank-${spec.rank} output, got a grid of rank ${grid.length}`);
    const words = grid.reduce((a: number, b: number) => a * b, 1);
    if (words === 0) return Promise.resolve(this.#device.alloc(0, kind));
    const compiled = this.compiled(spec);
    const positional = compiled.order.map((name) => {
      const value = args[name];
      if (value === undefined) throw new Error(`kernel ${spec.key}: no value for parameter "${name}"`);
      return typeof value === 'number' ? value : this.#device.bind(value);
    });
    const gridKey = grid.join('x');
    const result = compiled.tail.then(async () => {
      if (compiled.lastGrid !== gridKey) {
        compiled.handle.setOutput(grid);
        compiled.lastGrid = gridKey;
      }
      const output = await compiled.handle.call(positional);
      this.#touchModule(compiled);
      const reason = compiled.handle.fallbackReason();
      if (reason !== null) this.#fallbacks.set(spec.key, reason);
      return this.#device.adopt(output, words, kind, compiled.handle.impl());
    });
    compiled.tail = result.catch(() => undefined);
    return result;
  }

  /**
   * Marks the module of `compiled`'s latest call as the most recently used and releases the
   * least recently used ones beyond the bound. Modules gpu.js evicted itself are forgotten on
   * the way. Other kernels' queued runs are safe: gpu.js scrubs a shared module only after the
   * threaded runs on it settle, and unshared runs finish within their call.
   */
  #touchModule(compiled: Compiled): void {
    const signature = compiled.handle.activeSignature();
    if (signature === null) return;
    const id = `${compiled.spec.key}\n${signature}`;
    if (!this.#modules.delete(id)) this.#assembled++;
    this.#modules.set(id, { compiled, signature });
    if (this.#modules.size <= this.#maxModules) return;
    let live = this.wasmModules.live;
    for (const [oldId, m] of this.#modules) {
      if (live <= this.#maxModules || oldId === id) break;
      this.#modules.delete(oldId);
      if (m.compiled.handle.releaseModule(m.signature)) {
        this.#released++;
        live--;
      }
    }
  }

  destroy(): void {
    for (const k of this.#kernels.values()) k.handle.destroy();
    this.#kernels.clear();
    this.#modules.clear();
  }
}

/** Parameter names of a plain function's source (`function name(a, b) {…}` or `(a, b) => …`). */
export function parameterNames(source: string): string[] {
  const open = source.indexOf('(');
  const close = source.indexOf(')', open);
  if (open < 0 || close < 0) throw new ConfigError({ fn: 'GpujsBackend.kernel', expected: 'a plain function', got: source.slice(0, 60) });
  return source
    .slice(open + 1, close)
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.length > 0);
}
