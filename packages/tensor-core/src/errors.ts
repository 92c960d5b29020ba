// One error family for every attnkit package. `instanceof` breaks when two copies of a package
// are installed side by side, so membership is a `Symbol.for` brand that both copies share.

const BRAND = Symbol.for('attnkit.error');

export type AttnkitErrorKind = 'shape' | 'dtype' | 'capacity' | 'config' | 'backend' | 'aborted' | 'format';

export interface AttnkitErrorDetails {
  /** The public function that refused its input, e.g. `attention` or `KVCache.append`. */
  readonly fn: string;
  /** What the function expected, in words. */
  readonly expected: string;
  /** What it got, in words. */
  readonly got: string;
}

/** Base class of every error attnkit throws on purpose. */
export class AttnkitError extends Error {
  readonly [BRAND] = true;
  readonly kind: AttnkitErrorKind;
  readonly fn: string;
  readonly expected: string;
  readonly got: string;

  constructor(kind: AttnkitErrorKind, details: AttnkitErrorDetails, options?: ErrorOptions) {
    super(`[${details.fn}] expected ${details.expected}, got ${details.got}`, options);
    this.name = 'AttnkitError';
    this.kind = kind;
    this.fn = details.fn;
    this.expected = details.expected;
    this.got = details.got;
  }

  /** True for any attnkit error, from this copy of the package or another. */
  static isInstance(error: unknown): error is AttnkitError {
    return typeof error === 'object' && error !== null && BRAND in error && error[BRAND] === true;
  }
}

/** A tensor has the wrong rank, shape, or a dimension that does not match another input. */
export class ShapeError extends AttnkitError {
  constructor(details: AttnkitErrorDetails, options?: ErrorOptions) {
    super('shape', details, options);
    this.name = 'ShapeError';
  }
}

/** A tensor has a dtype the function does not accept. */
export class DTypeError extends AttnkitError {
  constructor(details: AttnkitErrorDetails, options?: ErrorOptions) {
    super('dtype', details, options);
    this.name = 'DTypeError';
  }
}

/** A cache or buffer would overflow, or a length is out of range (truncating past the end, …). */
export class CapacityError extends AttnkitError {
  constructor(details: AttnkitErrorDetails, options?: ErrorOptions) {
    super('capacity', details, options);
    this.name = 'CapacityError';
  }
}

/** A configuration value is out of range or inconsistent with another one. */
export class ConfigError extends AttnkitError {
  constructor(details: AttnkitErrorDetails, options?: ErrorOptions) {
    super('config', details, options);
    this.name = 'ConfigError';
  }
}

/** A backend cannot run the request: unavailable, disposed, lost device, mixed backends. */
export class BackendError extends AttnkitError {
  constructor(details: AttnkitErrorDetails, options?: ErrorOptions) {
    super('backend', details, options);
    this.name = 'BackendError';
  }
}

/** A file (safetensors, config.json, golden manifest) is malformed, truncated or mismatched. */
export class FormatError extends AttnkitError {
  constructor(details: AttnkitErrorDetails, options?: ErrorOptions) {
    super('format', details, options);
    this.name = 'FormatError';
  }
}

/** A long operation stopped because its AbortSignal fired. */
export class AbortedError extends AttnkitError {
  constructor(fn: string, reason?: unknown) {
    super('aborted', { fn, expected: 'to run to completion', got: `an abort (${describeReason(reason)})` }, { cause: reason });
    this.name = 'AbortedError';
  }
}

function describeReason(reason: unknown): string {
  if (reason instanceof Error) return reason.message;
  if (reason === undefined) return 'no reason given';
  return typeof reason === 'string' ? reason : Object.prototype.toString.call(reason);
}

/** Throws AbortedError if the signal has fired; call between units of work. */
export function throwIfAborted(signal: AbortSignal | undefined, fn: string): void {
  if (signal?.aborted) throw new AbortedError(fn, signal.reason);
}

/** Formats a shape for messages: `[2, 3, 4]`. */
export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
