// The slice of the WebAssembly JavaScript API the CPU kernels use, typed here because the
// repository compiles without the DOM library (which is where TypeScript declares it).

export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
  grow(pages: number): number;
}

export interface WasmInstance {
  readonly exports: Readonly<Record<string, unknown>>;
}

export interface WasmApi {
  readonly Memory: new (descriptor: { initial: number; maximum?: number; shared?: boolean }) => WasmMemory;
  validate(bytes: Uint8Array<ArrayBuffer>): boolean;
  instantiate(bytes: Uint8Array<ArrayBuffer>, imports: Readonly<Record<string, Readonly<Record<string, unknown>>>>): Promise<{ readonly instance: WasmInstance }>;
}

function isWasmApi(x: unknown): x is WasmApi {
  return typeof x === 'object' && x !== null && 'Memory' in x && 'validate' in x && 'instantiate' in x;
}

/** The runtime's WebAssembly object, or null where there is none. */
export function webAssembly(): WasmApi | null {
  const api: unknown = Reflect.get(globalThis, 'WebAssembly');
  return isWasmApi(api) ? api : null;
}
