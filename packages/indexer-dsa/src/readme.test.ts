// The README's example must keep running: the fixture is the README's code block, verbatim
// (checked here) under one lint directive, and importing it runs it; what it prints is checked.
import { readFileSync } from 'node:fs';
import { expect, it, vi } from 'vitest';

it('runs the README example, which is the fixture verbatim', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
  const block = /## Example\n[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  const fixture = readFileSync(new URL('./testing/fixtures/readme-example.ts', import.meta.url), 'utf8').replace(/^\/\* eslint-disable no-console[^\n]*\n/, '');
  expect(block, 'the README example and src/testing/fixtures/readme-example.ts').toBe(fixture);
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  try {
    await import('./testing/fixtures/readme-example.js');
    const [shapes, picks, scores] = log.mock.calls;
    expect(shapes).toEqual([[1, 20, 64], [1, 1, 64], [21], true]);
    const lists: unknown = picks?.[0];
    expect(lists).toHaveLength(1);
    const keys: unknown = Array.isArray(lists) ? lists[0] : null;
    expect(keys).toHaveLength(8);
    const ascending = Array.isArray(keys) && keys.every((t: unknown, i) => typeof t === 'number' && t >= 0 && t <= 20 && (i === 0 || t > Number(keys[i - 1])));
    expect(ascending, '8 distinct positions 0..20, ascending').toBe(true);
    expect(scores).toEqual([[1, 1, 21]]);
  } finally {
    log.mockRestore();
  }
});
