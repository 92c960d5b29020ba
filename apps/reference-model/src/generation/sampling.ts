// Next-token sampling from logits: greedy, temperature, top-k and top-p (nucleus), with a seed
// so a run can be reproduced exactly.

import { ConfigError } from '@attnkit/tensor-core';

export interface SamplingOptions {
  /** 0 (default) is greedy: the arg-max, ties to the lower id. */
  readonly temperature?: number;
  /** Keep only the k most likely tokens (0 or undefined: all). */
  readonly topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p (1 or undefined: all). */
  readonly topP?: number;
  /** Seed of the generator (default 0). */
  readonly seed?: number;
}

/** A seeded uniform generator (mulberry32): deterministic across platforms. */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
}

export function validateSampling(options: SamplingOptions): void {
  const fn = 'sample';
  const { temperature = 0, topK = 0, topP = 1 } = options;
  if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new ConfigError({ fn, expected: 'temperature ≥ 0', got: String(temperature) });
  if (!Number.isInteger(topK) || topK < 0) throw new ConfigError({ fn, expected: 'topK a non-negative integer', got: String(topK) });
  if (!(topP > 0 && topP <= 1)) throw new ConfigError({ fn, expected: 'topP in (0, 1]', got: String(topP) });
}

/** Picks the next token id from one row of logits. */
export function sample(logits: Float32Array, options: SamplingOptions, rng: Rng): number {
  const temperature = options.temperature ?? 0;
  if (temperature === 0) return argmax(logits);
  const n = logits.length;
  // candidates sorted by logit, descending (ties: lower id first)
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => (logits[b] as number) - (logits[a] as number) || a - b);
  const k = options.topK && options.topK > 0 ? Math.min(options.topK, n) : n;
  const top = order.slice(0, k);
  const max = logits[top[0] as number] as number;
  const weights = top.map((i) => Math.exp(((logits[i] as number) - max) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let keep = top.length;
  const topP = options.topP ?? 1;
  if (topP < 1) {
    let cumulative = 0;
    for (let j = 0; j < top.length; j++) {
      cumulative += (weights[j] as number) / total;
      if (cumulative >= topP) {
        keep = j + 1;
        break;
      }
    }
  }
  const kept = weights.slice(0, keep);
  const keptTotal = kept.reduce((a, b) => a + b, 0);
  let r = rng.next() * keptTotal;
  for (let j = 0; j < keep; j++) {
    r -= kept[j] as number;
    if (r < 0) return top[j] as number;
  }
  return top[keep - 1] as number;
}

export function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}
