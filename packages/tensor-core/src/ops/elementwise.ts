import type { BinaryOp, UnaryOp } from '../kernels.js';
import { broadcastShapes } from '../shape.js';
import type { Tensor } from '../tensor.js';
import { expectDType, expectFiniteNumber, sameBackend } from './validate.js';

async function unary(fn: string, x: Tensor, op: UnaryOp): Promise<Tensor> {
  const backend = sameBackend(fn, x);
  expectDType(fn, 'x', x, 'f32');
  return backend.kernels.Unary({ x }, { op });
}

async function binary(fn: string, a: Tensor, b: Tensor, op: BinaryOp): Promise<Tensor> {
  const backend = sameBackend(fn, a, b);
  expectDType(fn, 'a', a, 'f32');
  expectDType(fn, 'b', b, 'f32');
  broadcastShapes(a.shape, b.shape, fn);
  return backend.kernels.Binary({ a, b }, { op });
}

/** x·sigmoid(x) (SwiGLU's gate activation). */
export const silu = (x: Tensor): Promise<Tensor> => unary('silu', x, 'silu');
export const relu = (x: Tensor): Promise<Tensor> => unary('relu', x, 'relu');
export const sigmoid = (x: Tensor): Promise<Tensor> => unary('sigmoid', x, 'sigmoid');
/** Exact GELU, 0.5·x·(1 + erf(x/√2)). */
export const gelu = (x: Tensor): Promise<Tensor> => unary('gelu', x, 'gelu');
/** GELU's tanh approximation (GPT-2). */
export const geluTanh = (x: Tensor): Promise<Tensor> => unary('geluTanh', x, 'gelu_tanh');
export const exp = (x: Tensor): Promise<Tensor> => unary('exp', x, 'exp');
export const neg = (x: Tensor): Promise<Tensor> => unary('neg', x, 'neg');
export const abs = (x: Tensor): Promise<Tensor> => unary('abs', x, 'abs');
export const sqrt = (x: Tensor): Promise<Tensor> => unary('sqrt', x, 'sqrt');
export const rsqrt = (x: Tensor): Promise<Tensor> => unary('rsqrt', x, 'rsqrt');
export const square = (x: Tensor): Promise<Tensor> => unary('square', x, 'square');
export const tanh = (x: Tensor): Promise<Tensor> => unary('tanh', x, 'tanh');

/** Elementwise a + b with NumPy broadcasting. */
export const add = (a: Tensor, b: Tensor): Promise<Tensor> => binary('add', a, b, 'add');
export const sub = (a: Tensor, b: Tensor): Promise<Tensor> => binary('sub', a, b, 'sub');
export const mul = (a: Tensor, b: Tensor): Promise<Tensor> => binary('mul', a, b, 'mul');
export const div = (a: Tensor, b: Tensor): Promise<Tensor> => binary('div', a, b, 'div');
export const maximum = (a: Tensor, b: Tensor): Promise<Tensor> => binary('maximum', a, b, 'max');
export const minimum = (a: Tensor, b: Tensor): Promise<Tensor> => binary('minimum', a, b, 'min');

/** x·scale + shift. */
export async function affine(x: Tensor, scale: number, shift = 0): Promise<Tensor> {
  const fn = 'affine';
  const backend = sameBackend(fn, x);
  expectDType(fn, 'x', x, 'f32');
  expectFiniteNumber(fn, 'scale', scale);
  expectFiniteNumber(fn, 'shift', shift);
  return backend.kernels.Affine({ x }, { scale, shift });
}
