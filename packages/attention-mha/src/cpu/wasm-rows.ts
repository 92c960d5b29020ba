// The prefill plumbing of the flash tile module, in WebAssembly so that it runs on every thread
// instead of in JavaScript on the calling one while the workers wait:
//
//   flashQueue  the threads' shared work queue: each thread takes the next job (a row block's
//               list of flashSpan calls) with an atomic add on a counter in the heap, until none
//               is left, so the threads finish together whatever the jobs' lengths (a causal
//               triangle's row blocks differ 64-fold) and whichever thread starts late
//   copyRows    rows of 16-byte multiples from one stride to another, times a scale: queries
//               scaled into row order, K/V rows packed head-major
//   finishRows  out = acc / l per row (zeros where l = 0: a row that saw no key)
//
// Tables (bytes): a call is 16 i32 — flashSpan's arguments, the score scratch (argument 14)
// replaced by the running thread's own; a job is {first call, end call} (2 i32).

import { wasm } from '@attnkit/tensor-core';

const { FunctionBuilder, block, br, brIf, call, f32, f32x4, get, i32, ifThen, set, v128 } = wasm;

/** Bytes per call entry (flashSpan's 16 i32 arguments). */
export const CALL_BYTES = 64;
/** Bytes per job entry. */
export const JOB_BYTES = 8;
/** flashSpan's argument that the queue replaces with the thread's score scratch. */
export const SCORE_ARG = 14;

/**
 * `flashQueue(calls, jobs, count, counter, s)`: runs jobs [next, count) of the job table, `next`
 * taken atomically from the i32 at `counter` (0 before the first thread starts), each job's calls
 * in order on this thread with score scratch `s`.
 */
export function buildFlashQueue(spanIndex: number, name = 'flashQueue'): wasm.FunctionBuilder {
  const f = new FunctionBuilder(name);
  const calls = f.param('i32');
  const jobs = f.param('i32');
  const count = f.param('i32');
  const counter = f.param('i32');
  const s = f.param('i32');
  const job = f.local('i32');
  const c = f.local('i32');
  const end = f.local('i32');
  const at = f.local('i32');
  const arg = (i: number): wasm.Expr => (i === SCORE_ARG ? get(s) : i32.load(get(at), 4 * i));
  f.body(
    block(
      wasm.loop(
        set(job, i32.atomic_rmw_add(get(counter), i32.const(1))),
        brIf(1, i32.ge_s(get(job), get(count))),
        set(at, i32.add(get(jobs), i32.mul(get(job), i32.const(JOB_BYTES)))),
        set(c, i32.load(get(at))),
        set(end, i32.load(get(at), 4)),
        block(
          wasm.loop(
            brIf(1, i32.ge_s(get(c), get(end))),
            set(at, i32.add(get(calls), i32.mul(get(c), i32.const(CALL_BYTES)))),
            call(spanIndex, ...Array.from({ length: CALL_BYTES / 4 }, (_, i) => arg(i))),
            set(c, i32.add(get(c), i32.const(1))),
            br(0),
          ),
        ),
        br(0),
      ),
    ),
  );
  return f;
}

/** `copyRows(src, srcStride, dst, dstStride, rows, bytes, scale)`: dst row = scale · src row (bytes a multiple of 16). */
export function buildCopyRows(): wasm.FunctionBuilder {
  const f = new FunctionBuilder('copyRows');
  const src = f.param('i32');
  const srcStride = f.param('i32');
  const dst = f.param('i32');
  const dstStride = f.param('i32');
  const rows = f.param('i32');
  const bytes = f.param('i32');
  const scale = f.param('f32');
  const r = f.local('i32');
  const o = f.local('i32');
  const k = f.local('v128');
  f.body(
    set(k, f32x4.splat(get(scale))),
    wasm.forRange(
      r,
      i32.const(0),
      get(rows),
      1,
      wasm.forRange(o, i32.const(0), get(bytes), 16, v128.store(i32.add(get(dst), get(o)), f32x4.mul(v128.load(i32.add(get(src), get(o))), get(k)))),
      set(src, i32.add(get(src), get(srcStride))),
      set(dst, i32.add(get(dst), get(dstStride))),
    ),
  );
  return f;
}

/**
 * `finishRows(acc, accStride, l, lStride, out, outStride, rows, bytes)`: out row = acc row / l,
 * zeros where l = 0 (no visible key); a NaN l gives a NaN row.
 */
export function buildFinishRows(): wasm.FunctionBuilder {
  const f = new FunctionBuilder('finishRows');
  const acc = f.param('i32');
  const accStride = f.param('i32');
  const l = f.param('i32');
  const lStride = f.param('i32');
  const out = f.param('i32');
  const outStride = f.param('i32');
  const rows = f.param('i32');
  const bytes = f.param('i32');
  const r = f.local('i32');
  const o = f.local('i32');
  const sum = f.local('f32');
  const d = f.local('v128');
  const zero = v128.const(new Array<number>(16).fill(0));
  f.body(
    wasm.forRange(
      r,
      i32.const(0),
      get(rows),
      1,
      set(sum, f32.load(get(l))),
      ifThen(
        f32.eq(get(sum), f32.const(0)),
        [wasm.forRange(o, i32.const(0), get(bytes), 16, v128.store(i32.add(get(out), get(o)), zero))],
        [set(d, f32x4.splat(get(sum))), wasm.forRange(o, i32.const(0), get(bytes), 16, v128.store(i32.add(get(out), get(o)), f32x4.div(v128.load(i32.add(get(acc), get(o))), get(d))))],
      ),
      set(acc, i32.add(get(acc), get(accStride))),
      set(l, i32.add(get(l), get(lStride))),
      set(out, i32.add(get(out), get(outStride))),
    ),
  );
  return f;
}
