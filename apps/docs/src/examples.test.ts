// The code on the guide pages is these files (included with VitePress' `<<<` snippets): run each
// one and check what it prints, so an example that stops working fails the tests.
import { afterEach, describe, expect, it, vi } from 'vitest';

async function runExample(name: string): Promise<string[]> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
    lines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
  });
  try {
    await import(`../examples/${name}.ts`);
  } finally {
    spy.mockRestore();
  }
  return lines;
}

afterEach(() => {
  vi.resetModules();
});

describe('guide examples', () => {
  it('getting-started: each token averages the values it sees', async () => {
    const lines = await runExample('getting-started');
    expect(lines[0]).toMatch(/^backend: \S+/);
    const match = /token 2, head 0: (\[.*\])/.exec(lines[1] ?? '');
    const values = JSON.parse(match?.[1] ?? '[]') as number[];
    expect(values).toHaveLength(4);
    values.forEach((x, d) => expect(x).toBeCloseTo(8 + d, 5));
  });

  it('tensor-core: matmul, masked softmax, RoPE, fp8 storage and a named error', async () => {
    const lines = await runExample('tensor-core');
    expect(lines).toEqual([
      'scores [1,0,1,0,1,1]',
      'row 0 sums to 1.0000',
      'position 0 is unrotated: [1,1,1,1]',
      'fp8 bytes: 528',
      expect.stringMatching(/^\[matmul\] expected inner dimensions to match .*, got 2 and 3$/),
      'live tensors after dispose: 0',
    ]);
  });

  it('attention-mha: a decode step reproduces the last row of the causal prefill', async () => {
    const lines = await runExample('attention-mha');
    expect(lines[0]).toBe('decode = last prefill row: true');
    expect(lines[1]).toMatch(/^lse of token 0 \(sees only itself\): -?\d/);
    expect(lines[3]).toBe('window output shape: [1,5,4,8]');
  });
});

describe('guide examples of landed packages', () => {
  it('kvcache: a cached decode step equals the prefill, truncate rolls back, MLA stores 576 values', async () => {
    const lines = await runExample('kvcache');
    expect(lines).toEqual([
      'cached tokens: [6] bytes held: 1024',
      'decode = prefill: true',
      'after truncate: [5]',
      'MLA bytes per token = storageBytes(bf16, 576): true',
    ]);
  });
});
