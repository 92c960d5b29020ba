// The slice of the WebAssembly JavaScript API the CPU kernels use, typed here because the
// repository compiles without the DOM library (which is where TypeScript declares it).

export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}

export interface WasmInstance {
  readonly exports: Readonly<Record<string, unknown>>;
}

/** A compiled module: opaque, instantiable here and postable to workers. */
export type WasmModule = object;

export type WasmImports = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

export interface WasmApi {
  readonly Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  readonly Instance: new (module: WasmModule, imports: WasmImports) => WasmInstance;
  validate(bytes: Uint8Array<ArrayBuffer>): boolean;
  compile(bytes: Uint8Array<ArrayBuffer>): Promise<WasmModule>;
}

function isWasmApi(x: unknown): x is WasmApi {
  return typeof x === 'object' && x !== null && 'Memory' in x && 'Instance' in x && 'validate' in x && 'compile' in x;
}

/** The runtime's WebAssembly object, or null where there is none. */
export function webAssembly(): WasmApi | null {
  const api: unknown = Reflect.get(globalThis, 'WebAssembly');
  return isWasmApi(api) ? api : null;
}
