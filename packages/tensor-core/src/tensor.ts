import type { Backend, DataId } from './backend.js';
import type { DType } from './dtype.js';
import { BackendError, DTypeError } from './errors.js';
import { type Shape, sizeOf } from './shape.js';

/**
 * An n-dimensional array whose storage is owned by a backend. Layout is contiguous and
 * row-major; activations are token-major (`[B, S, H, D]`), as in the golden vectors.
 *
 * A tensor is immutable from the outside. It holds device memory on GPU backends: call
 * `dispose()` (or declare it with `using`) when done. Reading is asynchronous: `await t.data()`.
 */
export class Tensor implements Disposable {
  readonly shape: Shape;
  readonly dtype: DType;
  readonly size: number;
  readonly backend: Backend;
  /** Opaque key of the storage inside `backend`; views made by `reshape` share it. */
  readonly dataId: DataId;
  /** For `int8` / `fp8e4m3`: values per f32 scale along the last axis. */
  readonly blockSize: number | undefined;
  #disposed = false;

  constructor(backend: Backend, dataId: DataId, shape: Shape, dtype: DType, blockSize?: number) {
    this.backend = backend;
    this.dataId = dataId;
    this.shape = Object.freeze([...shape]);
    this.dtype = dtype;
    this.size = sizeOf(shape);
    this.blockSize = blockSize;
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Values widened to f32 (quantised and 16-bit storage is decoded; i32 converted). */
  data(): Promise<Float32Array> {
    this.assertAlive('Tensor.data');
    return this.backend.read(this);
  }

  /** Values of an `i32` tensor. */
  dataInt(): Promise<Int32Array> {
    this.assertAlive('Tensor.dataInt');
    if (this.dtype !== 'i32') throw new DTypeError({ fn: 'Tensor.dataInt', expected: 'an i32 tensor', got: this.dtype });
    return this.backend.readInt(this);
  }

  /** Frees this handle's share of the storage. Idempotent. */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.backend.release(this.dataId);
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Throws BackendError if the tensor was disposed; kernels call this on every input. */
  assertAlive(fn: string): void {
    if (this.#disposed) {
      throw new BackendError({ fn, expected: 'a live tensor', got: `a disposed ${this.dtype} tensor of shape [${this.shape.join(', ')}]` });
    }
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}], ${this.backend.info.name})`;
  }
}
