// Generation: greedy decode equals re-running the whole sequence each step (the cache is
// invisible), seeded sampling is reproducible, tokens stream in order, and an abort at any
// point rejects with AbortedError after every tensor and cache was released.

import { AbortedError, CapacityError, ConfigError, type MemoryReport } from '@attnkit/tensor-core';
import { availableBackends } from '@attnkit/tensor-core/testing';
import { describeEachBackend } from '@attnkit/testkit';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Model } from '../model/model.js';
import { CHECKPOINTS_DIR, loadModelFromFolder } from '../node.js';
import { generate, type TokenEvent } from './generate.js';
import { argmax } from './sampling.js';

const { available } = await availableBackends();
/** cpu and one gpu.js backend (WebGPU when it starts): generation adds no kernels of its own. */
const GPU_PICK = ['gpujs-webgpu', 'gpujs-webasm', 'gpujs-cpu'].find((n) => available.some((b) => b.name === n));
const BACKENDS = available.filter((b) => b.name === 'cpu' || b.name === GPU_PICK);
const DSA_FIXTURE = join(import.meta.dirname, '../../fixtures/hf/deepseek-v32-dsa');

/** Greedy next tokens by full re-computation: no cache reuse at all. */
async function greedyByRecomputation(model: Model, prompt: readonly number[], n: number): Promise<number[]> {
  const ids = [...prompt];
  for (let i = 0; i < n; i++) {
    using cache = model.createCache();
    using logits = await model.forward([ids], cache, { lastOnly: true });
    ids.push(argmax(await logits.data()));
  }
  return ids.slice(prompt.length);
}

describeEachBackend(BACKENDS, (name) => `generate on '${name}'`, (getBackend) => {
  let model: Model;
  let baseline: MemoryReport;
  beforeAll(async () => {
    const backend = getBackend();
    model = await loadModelFromFolder(backend, DSA_FIXTURE);
    baseline = backend.memory();
  });
  afterAll(() => {
    model.dispose();
  });
  const expectNoLeak = (): void => {
    const now = getBackend().memory();
    expect([now.liveBuffers, now.liveTensors]).toEqual([baseline.liveBuffers, baseline.liveTensors]);
  };

  it('greedy decoding through the cache equals recomputing the whole sequence (DSA sparse from position 8)', async () => {
    const prompt = [84, 104, 101, 32, 113];
    const result = await generate(model, prompt, { maxTokens: 8 });
    expect(result.tokens).toEqual(await greedyByRecomputation(model, prompt, 8));
    expect(result.promptTokens).toBe(5);
    expect(result.stopReason).toBe('length');
    expect(result.kvBytesPerToken).toBe(model.kvBytesPerToken);
    expectNoLeak();
  });

  it('streams every token in order, and a seed reproduces a sampled run', async () => {
    const events: TokenEvent[] = [];
    const options = { maxTokens: 10, temperature: 1, topK: 20, topP: 0.95, seed: 7 };
    const first = await generate(model, 'The quick', { ...options, onToken: (e) => void events.push(e) });
    expect(events.map((e) => e.index)).toEqual([...Array(10).keys()]);
    expect(events.map((e) => e.id)).toEqual(first.tokens);
    expect(events.every((e) => e.kvBytes > 0 && e.elapsedMs >= 0)).toBe(true);
    expect(first.text.startsWith(events.map((e) => e.text).join(''))).toBe(true);
    const again = await generate(model, 'The quick', options);
    expect(again.tokens).toEqual(first.tokens);
    expectNoLeak();
  });

  it('stops at a stop token, and refuses prompts that do not fit', async () => {
    const greedy = await generate(model, 'The', { maxTokens: 4 });
    const stopAt = greedy.tokens[1] ?? -1;
    const stopped = await generate(model, 'The', { maxTokens: 4, stopTokens: [stopAt] });
    expect(stopped.stopReason).toBe('stop-token');
    expect(stopped.tokens).toEqual(greedy.tokens.slice(0, greedy.tokens.indexOf(stopAt) + 1));
    await expect(generate(model, [], { maxTokens: 1 })).rejects.toThrow(ConfigError);
    await expect(generate(model, 'x', { maxTokens: model.config.maxPositions + 1 })).rejects.toThrow(CapacityError);
    await expect(generate(model, 'x', { temperature: -1 })).rejects.toThrow(ConfigError);
    expectNoLeak();
  });

  it('an AbortSignal stops generation cleanly: between tokens, before the start, inside a prefill', async () => {
    const controller = new AbortController();
    const seen: number[] = [];
    const run = generate(model, 'The quick', {
      maxTokens: 20,
      signal: controller.signal,
      onToken: (e) => {
        seen.push(e.id);
        if (e.index === 2) controller.abort();
      },
    });
    await expect(run).rejects.toThrow(AbortedError);
    expect(seen).toHaveLength(3);
    expectNoLeak();

    await expect(generate(model, 'The', { signal: AbortSignal.abort() })).rejects.toThrow(AbortedError);
    expectNoLeak();

    const late = new AbortController();
    const pending = generate(model, 'The quick brown fox', { maxTokens: 20, signal: late.signal });
    setTimeout(() => late.abort(), 0);
    await expect(pending).rejects.toThrow(AbortedError);
    expectNoLeak();
  });

  it('an abort lands inside a long prefill, before any token', async () => {
    const backend = getBackend();
    using trained = await loadModelFromFolder(backend, join(CHECKPOINTS_DIR, 'fortunes-nsa'));
    const before = backend.memory();
    const controller = new AbortController();
    const tokens: number[] = [];
    const pending = generate(trained, 'x'.repeat(400), { maxTokens: 4, signal: controller.signal, onToken: (e) => void tokens.push(e.id) });
    setTimeout(() => controller.abort(), 1);
    await expect(pending).rejects.toThrow(AbortedError);
    expect(tokens).toEqual([]);
    const after = backend.memory();
    expect([after.liveBuffers, after.liveTensors]).toEqual([before.liveBuffers, before.liveTensors]);
  });
});

describe('generation from a trained checkpoint', () => {
  it('prints readable bytes from the embedded default', async () => {
    const backend = available.find((b) => b.name === 'cpu');
    if (!backend) throw new Error('the cpu backend always exists');
    const cpu = await backend.create();
    try {
      using model = await loadModelFromFolder(cpu, join(CHECKPOINTS_DIR, 'fortunes-dsa'));
      const { text, tokens } = await generate(model, 'The meaning of life is', { maxTokens: 60 });
      expect(tokens).toHaveLength(60);
      // A trained byte model writes printable ASCII and spaces, not noise.
      const printable = [...text].filter((ch) => /[\x20-\x7e\n\t]/.test(ch)).length;
      expect(printable / text.length).toBeGreaterThan(0.95);
      expect(text.split(' ').length).toBeGreaterThan(5);
    } finally {
      await cpu.dispose();
    }
  });
});
