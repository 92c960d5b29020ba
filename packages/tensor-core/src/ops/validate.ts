// Boundary checks shared by the ops. Every failure names the public function, what it
// expected and what it got.

import type { Backend } from '../backend.js';
import type { DType } from '../dtype.js';
import { BackendError, ConfigError, DTypeError, ShapeError, formatShape } from '../errors.js';
import type { Tensor } from '../tensor.js';

/** All tensors are live and on one backend; returns that backend. */
export function sameBackend(fn: string, ...tensors: (Tensor | null | undefined)[]): Backend {
  let backend: Backend | undefined;
  for (const t of tensors) {
    if (!t) continue;
    t.assertAlive(fn);
    if (!backend) backend = t.backend;
    else if (t.backend !== backend) {
      throw new BackendError({ fn, expected: `all tensors on one backend (${backend.info.name})`, got: `a tensor on ${t.backend.info.name}` });
    }
  }
  if (!backend) throw new BackendError({ fn, expected: 'at least one tensor', got: 'none' });
  if (backend.isDisposed) throw new BackendError({ fn, expected: 'a live backend', got: `${backend.info.name} after dispose()` });
  return backend;
}

export function expectDType(fn: string, name: string, t: Tensor, ...allowed: DType[]): void {
  if (!allowed.includes(t.dtype)) {
    throw new DTypeError({ fn, expected: `${name} of dtype ${allowed.join(' or ')}`, got: t.dtype });
  }
}

export function expectRank(fn: string, name: string, t: Tensor, ...ranks: number[]): void {
  if (!ranks.includes(t.rank)) {
    throw new ShapeError({ fn, expected: `${name} of rank ${ranks.join(' or ')}`, got: `shape ${formatShape(t.shape)}` });
  }
}

export function expectMinRank(fn: string, name: string, t: Tensor, min: number): void {
  if (t.rank < min) throw new ShapeError({ fn, expected: `${name} of rank ≥ ${min}`, got: `shape ${formatShape(t.shape)}` });
}

export function expectDim(fn: string, what: string, actual: number | undefined, expected: number): void {
  if (actual !== expected) throw new ShapeError({ fn, expected: `${what} = ${expected}`, got: String(actual) });
}

export function expectFiniteNumber(fn: string, name: string, value: number): void {
  if (!Number.isFinite(value)) throw new ConfigError({ fn, expected: `${name} to be a finite number`, got: String(value) });
}

export function expectPositiveInt(fn: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value <= 0) throw new ConfigError({ fn, expected: `${name} to be a positive integer`, got: String(value) });
}

export function expectNonNegativeInt(fn: string, name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0) throw new ConfigError({ fn, expected: `${name} to be a non-negative integer`, got: String(value) });
}

/** Last dimension of a tensor (its feature size). */
export function lastDim(t: Tensor): number {
  return t.shape[t.rank - 1] ?? 1;
}
