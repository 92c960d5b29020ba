import { ConfigError } from '@attnkit/tensor-core';
import { describe, expect, it } from 'vitest';
import { ByteTokenizer, Utf8Stream } from './tokenizer.js';
import { Rng, argmax, sample, validateSampling } from './sampling.js';

describe('sampling', () => {
  const logits = Float32Array.from([0.1, 2.0, 1.9, -1, 2.0]);

  it('greedy takes the arg-max, ties to the lower id', () => {
    expect(argmax(logits)).toBe(1);
    expect(sample(logits, {}, new Rng(1))).toBe(1);
  });

  it('top-k 1 and a tiny top-p reduce to greedy at any temperature', () => {
    for (let seed = 0; seed < 20; seed++) {
      expect(sample(logits, { temperature: 5, topK: 1 }, new Rng(seed))).toBe(1);
      expect(sample(logits, { temperature: 5, topP: 1e-6 }, new Rng(seed))).toBe(1);
    }
  });

  it('is reproducible from the seed and follows the softmax distribution', () => {
    const draw = (seed: number): number[] => {
      const rng = new Rng(seed);
      return Array.from({ length: 4000 }, () => sample(logits, { temperature: 1 }, rng));
    };
    expect(draw(7)).toEqual(draw(7));
    const counts = new Array<number>(5).fill(0);
    for (const id of draw(7)) counts[id] = (counts[id] ?? 0) + 1;
    const z = Array.from(logits, (l) => Math.exp(l));
    const total = z.reduce((a, b) => a + b, 0);
    for (let i = 0; i < 5; i++) expect((counts[i] ?? 0) / 4000).toBeCloseTo((z[i] ?? 0) / total, 1);
  });

  it('top-k 2 never draws outside the two best', () => {
    const rng = new Rng(3);
    for (let i = 0; i < 500; i++) expect([1, 4]).toContain(sample(logits, { temperature: 2, topK: 2 }, rng));
  });

  it('rejects out-of-range options', () => {
    expect(() => validateSampling({ temperature: -1 })).toThrow(ConfigError);
    expect(() => validateSampling({ topK: 1.5 })).toThrow(ConfigError);
    expect(() => validateSampling({ topP: 0 })).toThrow(ConfigError);
    expect(() => validateSampling({ topP: 1.5 })).toThrow(ConfigError);
  });
});

describe('byte tokenizer', () => {
  it('round-trips any text through UTF-8 bytes', () => {
    const t = new ByteTokenizer();
    const text = 'Attention: 注意 ✓';
    expect(t.decode(t.encode(text))).toBe(text);
  });

  it('streams multi-byte characters without splitting them', () => {
    const ids = new ByteTokenizer().encode('é✓');
    const stream = new Utf8Stream();
    const pieces = ids.map((id) => stream.push(id));
    expect(pieces.join('') + stream.flush()).toBe('é✓');
    expect(pieces[0]).toBe('');
  });
});
