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

describe('package guide examples', () => {
  it('attention-mha layer: a cached decode step equals the prefill', async () => {
    expect(await runExample('attention-mha-layer')).toEqual(['shapes: [1,5,32] [1,1,32]', 'decode = prefill: true', 'cached tokens: [6]']);
  });

  it('attention-gqa: 8 query heads over 2 kv heads, decode equals prefill, MQA', async () => {
    expect(await runExample('attention-gqa')).toEqual(['group size: 4 prefill: [1,8,128] cached: [9]', 'decode = prefill: true', 'MQA: [1,8,128] group size 8']);
  });

  it('attention-mla: both orders agree, decode equals prefill, 576 values for V3', async () => {
    expect(await runExample('attention-mla')).toEqual([
      'cached: [11] prefill order: naive [1,10,64]',
      'naive = absorbed: true',
      'decode = prefill: true',
      'DeepSeek-V3 caches 576 values per token per layer, not 40960',
    ]);
  });

  it('attention-nsa: forced blocks selected, cached decode equals prefill, 5 631 keys at 64K', async () => {
    const lines = await runExample('attention-nsa');
    // query 39 with l′ = 8: its own block 4 and block 3 (local) and block 0 (initial) are forced, n = 3
    expect(lines).toEqual(['query 39, kv head 0 reads blocks [0,3,4]', 'decode = prefill: true', 'keys read at 64K: 5631']);
  });

  it('indexer-dsa: a decode step keeps min(index_topk, p + 1) tokens', async () => {
    expect(await runExample('indexer-dsa')).toEqual([
      'outputs: [1,20,64] [1,1,64] cached: [21] sparse: true',
      'position 20 attends to 8 of 21 tokens',
      'index scores: [1,1,21]',
      '{"latent":576,"indexKey":128,"total":704}',
    ]);
  });

  it('kvcache paged: fork shares pages, copy-on-write takes one, bytes per token of spec §5', async () => {
    expect(await runExample('kvcache-paged')).toEqual([
      'free pages after the prompt: 61',
      'beam 1 lengths [41,41] free pages: 60',
      'decode output: [2,1,4,16]',
      'MLA, bf16, 61 layers: 68.6 KiB',
      'DSA, bf16, per layer: 1408 B',
    ]);
  });

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
