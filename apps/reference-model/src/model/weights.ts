// The checkpoint's tensors on a backend, by name. Stored F16/BF16 values are widened to f32 on
// upload (exact), so every kernel computes in f32 as the PyTorch reference does.

import { type Backend, FormatError, type Tensor, decodeBf16, decodeF16 } from '@attnkit/tensor-core';
import { type SafetensorsEntry, entryValues } from '../io/safetensors.js';
import type { Checkpoint } from './checkpoint.js';

function f32Values(entry: SafetensorsEntry): Float32Array {
  const { dtype, data } = entryValues(entry);
  if (dtype === 'f32') return data;
  return dtype === 'f16' ? decodeF16(data) : decodeBf16(data);
}

/** Owns the uploaded weights; `dispose()` frees them all. */
export class Weights implements Disposable {
  readonly #tensors: Map<string, Tensor>;

  private constructor(tensors: Map<string, Tensor>) {
    this.#tensors = tensors;
  }

  static upload(backend: Backend, checkpoint: Checkpoint): Weights {
    const tensors = new Map<string, Tensor>();
    try {
      for (const [name, entry] of checkpoint.tensors) tensors.set(name, backend.upload(f32Values(entry), entry.shape, 'f32'));
    } catch (error) {
      for (const t of tensors.values()) t.dispose();
      throw error;
    }
    return new Weights(tensors);
  }

  /** The tensor called `name` (the checkpoint was checked against the config, so a miss is a bug upstream). */
  get(name: string): Tensor {
    const t = this.#tensors.get(name);
    if (!t) throw new FormatError({ fn: 'Weights.get', expected: `a tensor "${name}"`, got: 'none in the checkpoint' });
    return t;
  }

  has(name: string): boolean {
    return this.#tensors.has(name);
  }

  /** Every tensor whose name starts with `prefix`, under its full name (the packages' record format). */
  under(prefix: string): Record<string, Tensor> {
    const record: Record<string, Tensor> = {};
    for (const [name, t] of this.#tensors) if (name.startsWith(prefix)) record[name] = t;
    return record;
  }

  /** Bytes the weights occupy on the backend. */
  get nbytes(): number {
    let total = 0;
    for (const t of this.#tensors.values()) total += t.backend.storageBytes(t.dtype, t.size);
    return total;
  }

  dispose(): void {
    for (const t of this.#tensors.values()) t.dispose();
    this.#tensors.clear();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
